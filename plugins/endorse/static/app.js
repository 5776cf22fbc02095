// gw: SORACOM Endorse -> AWS IoT chat in the browser (docs/plugins/endorse.md, "The browser page").
//
// The flow of SORACOM's published Endorse + AWS IoT chat sample:
//  1. "Connect with my SIM" navigates to SORACOM Endorse with ?redirect_url=<this page>;
//     over the SIM's cellular link Endorse answers 302 back here with
//     ?soracom_endorse_token=<JWT> (docs/protocols.md section 5).
//  2. The page drops the token from the address bar and trades it, once, at this site's
//     /exchange (gw serve endorse-exchange) for a presigned AWS IoT URL:
//     {"url": "wss://<endpoint>/mqtt?X-Amz-...", "expiration": ..., "clientId": <imsi>}.
//  3. It connects with mqtt.js (the npm `mqtt` package's browser bundle, vendored at set-up
//     time into static/vendor/ by tests/browser/install.sh), subscribes to the chat topic,
//     shows every message with its sender and time, and publishes what the user types as
//     {"from": <clientId>, "text": ..., "sent": <ISO time>}.
// Connection loss: the form is disabled (the typed text stays in the box) and the page
// reconnects with the same URL while it is valid, with a growing pause; once the URL has
// expired it goes through Endorse again (a new one-time token -> /exchange -> a new URL),
// keeping the shown messages and the typed text in sessionStorage across that round trip.
// A message counts as sent only when the broker acknowledged it (QoS 1 PUBACK); until then
// it stays in the box.
// Settings come from this page's own query: ?endorse=<Endorse URL, https only> and
// ?topic=<MQTT topic>. The token and the presigned URL (which carries an AWS session
// token) are never shown, logged or stored.
(function () {
  "use strict";

  var TOKEN_PARAM = "soracom_endorse_token";
  var DEFAULT_ENDORSE = "https://endorse.soracom.io/";
  var DEFAULT_TOPIC = "gw/chat";
  var INSTALL_HINT = "bash tests/browser/install.sh --demo";
  var STORE_KEY = "gw-endorse-chat";
  var MAX_ATTEMPTS = 4; // reconnects with one URL before giving up (about 15 s)
  var EXPIRY_MARGIN_MS = 5000; // a URL this close to its expiry counts as expired
  var REFRESH_PAUSE_MS = 30000; // no second automatic trip through Endorse within this time
  var HISTORY = 100;
  var params = new URLSearchParams(window.location.search);
  var el = function (id) { return document.getElementById(id); };

  var session = null; // {url, expiresAt, clientId, topic}
  var client = null;
  var connected = false;
  var attempts = 0;
  var retryTimer = null;
  var history = [];
  var lostBecause = ""; // why the last working connection ended

  function setStatus(state, text) {
    var status = el("status");
    status.dataset.state = state;
    status.textContent = text;
    document.body.dataset.state = state;
  }

  function setFormEnabled(on) {
    el("message").disabled = !on;
    el("send").disabled = !on;
    el("send-form").dataset.enabled = on ? "true" : "false";
  }

  // What survives the trip through Endorse (never the token or the URL).
  function saved() {
    try {
      return JSON.parse(window.sessionStorage.getItem(STORE_KEY) || "null") || {};
    } catch (e) {
      return {};
    }
  }

  function save(extra) {
    var state = { history: history.slice(-HISTORY), draft: el("message").value };
    Object.keys(extra || {}).forEach(function (k) { state[k] = extra[k]; });
    try {
      window.sessionStorage.setItem(STORE_KEY, JSON.stringify(state));
    } catch (e) { /* storage full or off: the chat goes on without it */ }
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

  function goToEndorse(extra) {
    var target;
    try {
      target = endorseUrl();
    } catch (e) {
      setStatus("error", e.message);
      return false;
    }
    save(extra);
    window.location.assign(target.href);
    return true;
  }

  function startEndorse() {
    if (session && !expired()) { // "Reconnect" with a URL that is still good
      attempts = 0;
      connect();
      return;
    }
    el("connect").disabled = true;
    setStatus("redirecting", "Asking SORACOM Endorse for a token...");
    goToEndorse({ resume: false });
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
            var said = body && typeof body.message === "string" ? ": " + body.message : "";
            throw new Error("The exchange service refused (HTTP " + response.status + code + ")" + said);
          }
          if (!body || typeof body.url !== "string" || body.url.indexOf("wss://") !== 0) {
            throw new Error("The exchange service answered without a wss:// URL.");
          }
          // the URL's lifetime by the server's clock, so a skewed local clock does not matter
          var serverNow = Date.parse(response.headers.get("Date") || "");
          var expiry = Date.parse(body.expiration || "");
          var left = isNaN(expiry) ? 300000 : expiry - (isNaN(serverNow) ? Date.now() : serverNow);
          body.expiresAt = Date.now() + left;
          return body;
        });
      });
  }

  function expired() {
    return !session || Date.now() > session.expiresAt - EXPIRY_MARGIN_MS;
  }

  function two(n) { return (n < 10 ? "0" : "") + n; }

  function showMessage(entry) {
    var item = document.createElement("li");
    var own = session && entry.from === session.clientId;
    item.className = own ? "own" : "other";
    var head = document.createElement("div");
    head.className = "meta";
    var who = document.createElement("span");
    who.className = "sender";
    who.textContent = own ? "You" : (entry.from || "unknown sender");
    var when = document.createElement("time");
    var date = new Date(entry.at);
    when.dateTime = date.toISOString();
    when.textContent = two(date.getHours()) + ":" + two(date.getMinutes()) + ":" + two(date.getSeconds());
    when.title = date.toString();
    head.appendChild(who);
    head.appendChild(when);
    var what = document.createElement("div");
    what.className = "text";
    what.textContent = entry.text; // text, never HTML
    item.appendChild(head);
    item.appendChild(what);
    el("messages").appendChild(item);
  }

  // A payload in the page's own format gives sender and sending time; anything else is
  // shown as text from an unknown sender at the time it arrived.
  function received(payload) {
    var text = new TextDecoder().decode(payload);
    var entry = { from: "", text: text, at: Date.now() };
    try {
      var doc = JSON.parse(text);
      if (doc && typeof doc === "object" && typeof doc.text === "string") {
        entry.text = doc.text;
        entry.from = typeof doc.from === "string" ? doc.from.slice(0, 64) : "";
        var sent = Date.parse(doc.sent);
        if (!isNaN(sent)) {
          entry.at = sent;
        }
      }
    } catch (e) { /* plain text */ }
    history.push(entry);
    if (history.length > HISTORY) {
      history.shift();
    }
    showMessage(entry);
  }

  function reasonOf(wasConnected, why) {
    var reason = navigator.onLine === false ? "the browser is offline" :
      wasConnected ? "the connection to AWS IoT was lost" : "AWS IoT did not accept the connection";
    return why ? reason + " (" + why + ")" : reason;
  }

  function refresh(reason) {
    var last = saved().refreshedAt || 0;
    if (Date.now() - last < REFRESH_PAUSE_MS) { // the last fresh URL did not get us connected
      disconnected(reason + "; a fresh URL did not help either");
      return;
    }
    setStatus("reconnecting", "Reconnecting: the AWS IoT URL expired; asking SORACOM Endorse for a new one...");
    goToEndorse({ resume: true, refreshedAt: Date.now() });
  }

  function disconnected(reason) {
    setFormEnabled(false);
    el("connect").textContent = "Reconnect";
    el("connect").disabled = false;
    setStatus("disconnected", "Disconnected: " + reason + ". Press Reconnect to try again.");
  }

  function lost(wasConnected, firstTry, why) {
    connected = false;
    setFormEnabled(false);
    var reason = reasonOf(wasConnected, why);
    if (wasConnected) {
      lostBecause = reason;
    }
    if (firstTry && !wasConnected) { // a URL fresh from the exchange that never worked
      el("connect").disabled = false;
      setStatus("error", "Could not connect to AWS IoT: " + reason + ".");
      return;
    }
    if (expired()) {
      refresh(reason);
      return;
    }
    attempts += 1;
    if (attempts > MAX_ATTEMPTS) {
      disconnected((lostBecause ? lostBecause + ", and " : "") + MAX_ATTEMPTS + " reconnects failed: " + reason);
      return;
    }
    var delay = Math.min(1000 * Math.pow(2, attempts - 1), 10000);
    setStatus("reconnecting", "Reconnecting in " + Math.round(delay / 1000) + " s (attempt " + attempts + " of " +
      MAX_ATTEMPTS + "): " + reason + ".");
    retryTimer = window.setTimeout(connect, delay);
  }

  function connect() {
    window.clearTimeout(retryTimer);
    if (expired()) {
      refresh("the AWS IoT URL expired");
      return;
    }
    var firstTry = client === null;
    if (firstTry) {
      setStatus("connecting", "Connecting to AWS IoT...");
    } else if (el("status").dataset.state !== "reconnecting") { // Reconnect pressed
      setStatus("reconnecting", "Reconnecting to AWS IoT...");
    }
    el("connect").disabled = true;
    var wasConnected = false;
    var why = "";
    var done = false;
    // one URL, one client per attempt: the reconnect policy is the page's own (reconnectPeriod 0)
    var current = window.mqtt.connect(session.url, {
      clientId: session.clientId,
      protocolVersion: 4,
      clean: true,
      reconnectPeriod: 0,
      connectTimeout: 10000,
    });
    client = current;
    current.on("connect", function () {
      wasConnected = true;
      current.subscribe(session.topic, { qos: 1 }, function (err) {
        if (err) {
          why = "subscribe refused: " + err.message;
          current.end(true);
          return;
        }
        connected = true;
        attempts = 0;
        save({ refreshedAt: 0 });
        el("chat").hidden = false;
        el("connect").textContent = "Connect with my SIM";
        setFormEnabled(true);
        setStatus("connected", "Connected to AWS IoT as " + session.clientId + ".");
      });
    });
    current.on("message", function (messageTopic, payload) {
      received(payload);
    });
    current.on("error", function (err) {
      why = err && err.message ? err.message : "";
    });
    current.on("close", function () {
      if (done) {
        return;
      }
      done = true;
      current.end(true);
      lost(wasConnected, firstTry, why);
    });
  }

  function send(event) {
    event.preventDefault();
    var input = el("message");
    var text = input.value.trim();
    if (!connected || !text) {
      return;
    }
    var payload = JSON.stringify({ from: session.clientId, text: text, sent: new Date().toISOString() });
    el("send").disabled = true;
    // cleared only once the broker acknowledged it: a message is never lost in silence
    client.publish(session.topic, payload, { qos: 1 }, function (err) {
      if (err) {
        setStatus(connected ? "connected" : el("status").dataset.state,
          "Not sent (" + err.message + "): the text stays in the box.");
      } else if (input.value.trim() === text) {
        input.value = "";
      }
      el("send").disabled = !connected;
    });
  }

  function chat(answer) {
    var topic = params.get("topic") ||
      (typeof answer.topic_prefix === "string" ? answer.topic_prefix + "chat" : DEFAULT_TOPIC);
    var clientId = typeof answer.clientId === "string" && answer.clientId ?
      answer.clientId : "gw-" + Math.random().toString(16).slice(2, 10);
    session = { url: answer.url, expiresAt: answer.expiresAt, clientId: clientId, topic: topic };
    el("topic").textContent = topic;
    el("client-id").textContent = clientId;
    el("expires").textContent = answer.expiration || "";
    el("messages").textContent = "";
    history.forEach(showMessage); // what was shown before a trip through Endorse
    el("chat").hidden = false;
    connect();
  }

  function main() {
    el("connect").addEventListener("click", startEndorse);
    el("send-form").addEventListener("submit", send);
    setFormEnabled(false);
    if (typeof window.mqtt === "undefined") {
      el("connect").disabled = true;
      setStatus("error", "The MQTT library is missing (static/vendor/mqtt.min.js). In the gw checkout run: " +
        INSTALL_HINT + " (it fetches the npm package mqtt), then reload this page.");
      return;
    }
    var token = params.get(TOKEN_PARAM);
    if (!token) {
      return;
    }
    // One-time token: out of the address bar and history before anything else.
    params.delete(TOKEN_PARAM);
    window.history.replaceState(null, "", selfUrl());
    var state = saved();
    if (state.resume) {
      history = Array.isArray(state.history) ? state.history : [];
      el("message").value = typeof state.draft === "string" ? state.draft : "";
    }
    el("connect").disabled = true;
    setStatus(state.resume ? "reconnecting" : "exchanging", (state.resume ? "Reconnecting: trading" : "Trading") +
      " the Endorse token for an AWS IoT URL...");
    exchange(token).then(chat).catch(function (e) {
      el("connect").disabled = false;
      setStatus("error", e.message);
    });
  }

  main();
})();
