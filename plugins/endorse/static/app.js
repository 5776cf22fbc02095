// gw: SORACOM Endorse -> AWS IoT chat in the browser.
//
// The flow of SORACOM's published Endorse + AWS IoT chat sample:
//  1. "Connect with my SIM" navigates to SORACOM Endorse with ?redirect_url=<this page>;
//     over the SIM's cellular link Endorse answers 302 back here with
//     ?soracom_endorse_token=<JWT> (protocols.md section 5).
//  2. The page drops the token from the address bar and trades it, once, at this site's
//     /exchange (gw serve endorse-exchange) for a presigned AWS IoT URL:
//     {"url": "wss://<endpoint>/mqtt?X-Amz-...", "expiration": ..., "clientId": <imsi>}.
//  3. It connects with mqtt.js (the npm `mqtt` package's browser bundle, vendored at build
//     time into static/vendor/ by tests/browser/install.sh), subscribes to the chat topic,
//     shows every message, and publishes what the user types.
// Settings come from this page's own query: ?endorse=<Endorse URL, https only> and
// ?topic=<MQTT topic>. The token and the presigned URL (which carries an AWS session
// token) are never shown, logged or stored.
(function () {
  "use strict";

  var TOKEN_PARAM = "soracom_endorse_token";
  var DEFAULT_ENDORSE = "https://endorse.soracom.io/";
  var DEFAULT_TOPIC = "gw/chat";
  var params = new URLSearchParams(window.location.search);
  var el = function (id) { return document.getElementById(id); };

  function setStatus(state, text) {
    var status = el("status");
    status.dataset.state = state;
    status.textContent = text;
  }

  // This page's address without the one-time token: where Endorse sends the browser back.
  function selfUrl() {
    var url = new URL(window.location.href);
    url.searchParams.delete(TOKEN_PARAM);
    url.hash = "";
    return url.href;
  }

  function endorseUrl() {
    var url = new URL(params.get("endorse") || DEFAULT_ENDORSE, window.location.href);
    if (url.protocol !== "https:") {
      throw new Error("the Endorse URL must be https");
    }
    url.searchParams.set("redirect_url", selfUrl());
    return url;
  }

  function startEndorse() {
    var target;
    try {
      target = endorseUrl();
    } catch (e) {
      setStatus("error", e.message);
      return;
    }
    setStatus("redirecting", "Asking SORACOM Endorse for a token...");
    window.location.assign(target.href);
  }

  function exchange(token) {
    var url = new URL("exchange", window.location.href); // same origin: never sent elsewhere
    url.searchParams.set("output", "iot-wss");
    url.searchParams.set(TOKEN_PARAM, token);
    return fetch(url.href, { method: "GET", cache: "no-store", credentials: "omit", referrerPolicy: "no-referrer" })
      .then(function (response) {
        return response.json().catch(function () { return null; }).then(function (body) {
          if (!response.ok) {
            var code = body && typeof body.code === "string" ? " " + body.code : "";
            throw new Error("the exchange refused the token (HTTP " + response.status + code + ")");
          }
          if (!body || typeof body.url !== "string" || body.url.indexOf("wss://") !== 0) {
            throw new Error("the exchange answered without a wss:// URL");
          }
          return body;
        });
      });
  }

  function addMessage(topic, text) {
    var item = document.createElement("li");
    var where = document.createElement("span");
    where.className = "topic";
    where.textContent = topic;
    var what = document.createElement("span");
    what.className = "text";
    what.textContent = text; // text, never HTML
    item.appendChild(where);
    item.appendChild(what);
    el("messages").appendChild(item);
  }

  function chat(answer) {
    var topic = params.get("topic") ||
      (typeof answer.topic_prefix === "string" ? answer.topic_prefix + "chat" : DEFAULT_TOPIC);
    var clientId = typeof answer.clientId === "string" && answer.clientId ?
      answer.clientId : "gw-" + Math.random().toString(16).slice(2, 10);
    el("topic").textContent = topic;
    el("client-id").textContent = clientId;
    el("expires").textContent = answer.expiration || "";
    setStatus("connecting", "Connecting to AWS IoT...");

    // The presigned URL is good for one connection attempt window: no automatic reconnects.
    var client = window.mqtt.connect(answer.url, {
      clientId: clientId,
      protocolVersion: 4,
      clean: true,
      reconnectPeriod: 0,
      connectTimeout: 15000,
    });
    var failed = false;
    var connected = false;
    client.on("connect", function () {
      connected = true;
      client.subscribe(topic, { qos: 1 }, function (err) {
        if (err) {
          failed = true;
          setStatus("error", "Subscribe refused: " + err.message);
          return;
        }
        el("chat").hidden = false;
        setStatus("connected", "Connected.");
      });
    });
    client.on("message", function (messageTopic, payload) {
      addMessage(messageTopic, new TextDecoder().decode(payload));
    });
    client.on("error", function (err) {
      failed = true;
      setStatus("error", "MQTT error: " + (err && err.message ? err.message : "connection failed"));
    });
    client.on("close", function () {
      if (!connected && !failed) {
        failed = true; // refused upgrade (HTTP 403), TLS or network failure: the browser hides which
        setStatus("error", "Could not connect to AWS IoT.");
        client.end(true);
      } else if (!failed) {
        setStatus("closed", "Disconnected. Connect again for a new URL.");
      }
      el("connect").disabled = false;
    });
    el("send-form").addEventListener("submit", function (event) {
      event.preventDefault();
      var input = el("message");
      if (!input.value) {
        return;
      }
      client.publish(topic, input.value, { qos: 1 });
      input.value = "";
    });
  }

  function main() {
    el("connect").addEventListener("click", startEndorse);
    var token = params.get(TOKEN_PARAM);
    if (!token) {
      return;
    }
    // One-time token: out of the address bar and history before anything else.
    params.delete(TOKEN_PARAM);
    window.history.replaceState(null, "", selfUrl());
    if (typeof window.mqtt === "undefined") {
      setStatus("error", "The MQTT library is missing (static/vendor/mqtt.min.js: run make).");
      return;
    }
    el("connect").disabled = true;
    setStatus("exchanging", "Trading the Endorse token for an AWS IoT URL...");
    exchange(token).then(chat).catch(function (e) {
      el("connect").disabled = false;
      setStatus("error", e.message);
    });
  }

  main();
})();
