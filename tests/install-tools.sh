#!/bin/sh
# Install the command-line tools the tests drive (Debian/Ubuntu), besides the PC/SC stack:
#   faketime   runs gw in the future (one MFA per session across hours: tests/core/test_shared_steps.py)
#   curl       the curl -H "$(gw token ...)" recipe (tests/plugins/cognito/test_token_command.py)
#   openssl    s_client with ALPN x-amzn-http-ca against the IoT credentials emulator (tests/interop/test_iot_credentials.py)
#   zsh, fish  gw completion zsh|fish scripts, checked by the real shells (tests/core/test_conventions.py)
sh "$(dirname "$0")/apt-install.sh" tools faketime curl openssl zsh fish
