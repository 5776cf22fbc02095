"""Names the AWS IoT credentials provider accepts (shared by the step and ``gw iot register``)."""

import re

#: a role alias: the characters AWS allows, all of them safe in a URL path
ROLE_ALIAS = re.compile(r"[\w=,@-]{1,128}\Z", re.ASCII)
