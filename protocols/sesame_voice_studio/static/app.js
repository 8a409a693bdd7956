// sesame-voice studio: plain JavaScript, no framework, no build step. Every URL is relative to the
// page, so the studio works under a reverse proxy's path prefix (Home Assistant's Ingress).
"use strict";

const $ = (id) => document.getElementById(id);
const KEY_NAME = "sesame-voice-api-key";
const state = { key: localStorage.getItem(KEY_NAME) || sessionStorage.getItem(KEY_NAME) || "", voices: [], health: null, audio: null };

// -- API ------------------------------------------------------------------------------------------
async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  if (state.key) headers.Authorization = "Bearer " + state.key;
  const init = { method: options.method || "GET", headers };
  if (options.json !== undefined) { headers["Content-Type"] = "application/json"; init.body = JSON.stringify(options.json); }
  if (options.body !== undefined) init.body = options.body;
  if (options.signal) init.signal = options.signal;
  const response = await fetch(path, init);
  if (response.status === 401) askForKey("The server needs its API key for " + path + ".");
  return response;
}

async function errorText(response) {
  try {
    const body = await response.json();
    if (body.error) return body.error.message + (body.error.code ? " (" + body.error.code + ")" : "");
    if (body.detail) return typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
    return JSON.stringify(body);
  } catch (err) { return response.status + " " + response.statusText; }
}

function say(id, text, isError = false) {
  const element = $(id);
  element.textContent = text;
  element.classList.toggle("error", isError);
}

function askForKey(reason) {
  $("key-form").hidden = false;
  say("banner", reason + " Enter it above.", true);
  $("banner").hidden = false;
  $("key-input").focus();
}

function setupKey() {
  $("key-button").addEventListener("click", () => { $("key-form").hidden = !$("key-form").hidden; if (!$("key-form").hidden) $("key-input").focus(); });
  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    state.key = $("key-input").value.trim();
    sessionStorage.setItem(KEY_NAME, state.key);
    if ($("key-remember").checked) localStorage.setItem(KEY_NAME, state.key); else localStorage.removeItem(KEY_NAME);
    $("key-form").hidden = true;
    $("banner").hidden = true;
    refreshAll();
  });
  $("key-forget").addEventListener("click", () => {
    state.key = ""; localStorage.removeItem(KEY_NAME); sessionStorage.removeItem(KEY_NAME); $("key-input").value = "";
  });
}

// -- audio helpers ---------------------------------------------------------------------------------
function audioContext() {
  if (!state.audio) state.audio = new AudioContext();
  return state.audio;
}

function concatFloat(parts) {
  const total = parts.reduce((n, p) => n + p.length, 0);
  const out = new Float32Array(total);
  let at = 0;
  for (const part of parts) { out.set(part, at); at += part.length; }
  return out;
}

function wavBlob(samples, rate) {
  const buffer = new ArrayBuffer(44 + samples.length * 2);
  const view = new DataView(buffer);
  const text = (offset, s) => { for (let i = 0; i < s.length; i++) view.setUint8(offset + i, s.charCodeAt(i)); };
  text(0, "RIFF"); view.setUint32(4, 36 + samples.length * 2, true); text(8, "WAVE"); text(12, "fmt ");
  view.setUint32(16, 16, true); view.setUint16(20, 1, true); view.setUint16(22, 1, true);
  view.setUint32(24, rate, true); view.setUint32(28, rate * 2, true); view.setUint16(32, 2, true); view.setUint16(34, 16, true);
  text(36, "data"); view.setUint32(40, samples.length * 2, true);
  for (let i = 0; i < samples.length; i++) {
    const s = Math.max(-1, Math.min(1, samples[i]));
    view.setInt16(44 + i * 2, s < 0 ? s * 32768 : s * 32767, true);
  }
  return new Blob([buffer], { type: "audio/wav" });
}

async function blobToWav(blob) {
  // Decode whatever the recorder made (WebM/Opus) and write it as 16-bit WAV, mono.
  const decoded = await audioContext().decodeAudioData(await blob.arrayBuffer());
  const channels = [];
  for (let c = 0; c < decoded.numberOfChannels; c++) channels.push(decoded.getChannelData(c));
  const mono = new Float32Array(decoded.length);
  for (const channel of channels) for (let i = 0; i < mono.length; i++) mono[i] += channel[i] / channels.length;
  return wavBlob(mono, decoded.sampleRate);
}

async function base64Of(blob) {
  const bytes = new Uint8Array(await blob.arrayBuffer());
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

class Recorder {
  // Microphone → WAV blob. start() asks for the microphone; stop() resolves with the recording.
  async start() {
    this.stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    this.chunks = [];
    this.recorder = new MediaRecorder(this.stream);
    this.recorder.addEventListener("dataavailable", (e) => { if (e.data.size) this.chunks.push(e.data); });
    this.recorder.start(250);
  }
  stop() {
    return new Promise((resolve, reject) => {
      this.recorder.addEventListener("stop", () => {
        this.stream.getTracks().forEach((t) => t.stop());
        blobToWav(new Blob(this.chunks, { type: this.recorder.mimeType })).then(resolve, reject);
      }, { once: true });
      this.recorder.stop();
    });
  }
}

function wireRecorder(startId, stopId, statusId, onDone) {
  let recorder = null;
  $(startId).addEventListener("click", async () => {
    recorder = new Recorder();
    try { await recorder.start(); } catch (err) { say(statusId, "No microphone: " + err.message, true); return; }
    $(startId).disabled = true; $(stopId).disabled = false;
    say(statusId, "Recording… press “" + $(stopId).textContent + "” when done.");
  });
  $(stopId).addEventListener("click", async () => {
    $(stopId).disabled = true; $(startId).disabled = false;
    try { await onDone(await recorder.stop()); } catch (err) { say(statusId, "Recording failed: " + err.message, true); }
  });
}

// -- voices and health -------------------------------------------------------------------------------
function providerState(name) {
  const providers = (state.health && state.health.providers) || {};
  return providers[name] ? providers[name].state : "unknown";
}

function stateBadge(name) {
  const badge = document.createElement("span");
  const s = providerState(name);
  badge.className = "state-" + s;
  badge.textContent = name + " (" + s + ")";
  return badge;
}

async function loadVoices() {
  const response = await api("v1/audio/voices");
  if (!response.ok) { say("speak-status", "Voices: " + (await errorText(response)), true); return; }
  state.voices = (await response.json()).data;
  for (const id of ["speak-voice", "talk-voice"]) {
    const select = $(id);
    const chosen = select.value;
    select.textContent = "";
    for (const voice of state.voices) {
      const option = document.createElement("option");
      option.value = voice.id;
      option.textContent = voice.id + " — " + voice.provider + " (" + providerState(voice.provider) + ")";
      if (voice.default && !chosen) option.selected = true;
      select.append(option);
    }
    if (chosen && state.voices.some((v) => v.id === chosen)) select.value = chosen;
  }
  const body = $("voices-table").tBodies[0];
  body.textContent = "";
  for (const voice of state.voices) {
    const row = body.insertRow();
    row.dataset.voice = voice.id;
    const name = document.createElement("th");
    name.scope = "row";
    name.textContent = voice.id + (voice.default ? " (default)" : "");
    row.append(name);
    row.insertCell().append(stateBadge(voice.provider));
    const fallbacks = row.insertCell();
    voice.fallbacks.forEach((f, i) => { if (i) fallbacks.append(", "); fallbacks.append(stateBadge(f)); });
    row.insertCell().textContent = voice.description || "";
    const actions = row.insertCell();
    const use = document.createElement("button");
    use.type = "button"; use.textContent = "Use"; use.setAttribute("aria-label", "Use " + voice.id);
    use.addEventListener("click", () => { $("speak-voice").value = voice.id; showVoiceInfo(); $("speak-text").focus(); });
    actions.append(use);
    if (voice.deletable) {
      const remove = document.createElement("button");
      remove.type = "button"; remove.textContent = "Delete"; remove.setAttribute("aria-label", "Delete voice " + voice.id);
      remove.addEventListener("click", () => deleteVoice(voice.id));
      actions.append(remove);
    }
  }
  showVoiceInfo();
}

function showVoiceInfo() {
  const voice = state.voices.find((v) => v.id === $("speak-voice").value);
  if (!voice) return;
  const chain = [voice.provider].concat(voice.fallbacks).map((p) => p + " (" + providerState(p) + ")");
  $("speak-voice-info").textContent = (voice.description ? voice.description + ". " : "") + "Spoken by " + chain.join(", then ") + ".";
}

async function deleteVoice(name) {
  if (!confirm("Delete the voice " + name + "? Its clip and transcript are removed from the voices folder.")) return;
  const response = await api("v1/audio/voices/" + encodeURIComponent(name), { method: "DELETE" });
  say("speak-status", response.status === 204 ? "Deleted " + name + "." : "Delete failed: " + (await errorText(response)), response.status !== 204);
  await loadVoices();
}

async function loadHealth() {
  const response = await api("health");
  if (response.ok) state.health = await response.json();
}

// -- speak -------------------------------------------------------------------------------------------
let speaking = null;

async function speak(event) {
  event.preventDefault();
  if (speaking) speaking.abort();
  const controller = new AbortController();
  speaking = controller;
  const ctx = audioContext();
  await ctx.resume();
  const body = { model: "tts-1", input: $("speak-text").value, voice: $("speak-voice").value, response_format: "pcm",
                 speed: Number($("speak-speed").value) || 1 };
  if ($("speak-instructions").value.trim()) body.instructions = $("speak-instructions").value.trim();
  $("speak-download").disabled = true;
  $("speak-status").dataset.played = "";
  say("speak-status", "Synthesising…");
  const started = performance.now();
  let response;
  try { response = await api("v1/audio/speech", { method: "POST", json: body, signal: controller.signal }); }
  catch (err) { say("speak-status", "Request failed: " + err.message, true); return; }
  if (!response.ok) { say("speak-status", "Speech failed: " + (await errorText(response)), true); return; }
  const rate = Number(response.headers.get("X-Sample-Rate")) || 24000;
  const provider = response.headers.get("X-Sesame-Provider") || "?";
  const fellBack = response.headers.get("X-Sesame-Fallback-From");
  const reader = response.body.getReader();
  const parts = [];
  let carry = new Uint8Array(0), playAt = 0, firstAudio = null;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      const bytes = new Uint8Array(carry.length + value.length);
      bytes.set(carry); bytes.set(value, carry.length);
      const whole = bytes.length - (bytes.length % 2);
      carry = bytes.slice(whole);
      if (!whole) continue;
      const view = new DataView(bytes.buffer, 0, whole);
      const samples = new Float32Array(whole / 2);
      for (let i = 0; i < samples.length; i++) samples[i] = view.getInt16(i * 2, true) / 32768;
      parts.push(samples);
      if (firstAudio === null) { firstAudio = performance.now() - started; playAt = ctx.currentTime + 0.05; }
      const buffer = ctx.createBuffer(1, samples.length, rate);
      buffer.copyToChannel(samples, 0);
      const source = ctx.createBufferSource();
      source.buffer = buffer;
      source.connect(ctx.destination);
      playAt = Math.max(playAt, ctx.currentTime);
      source.start(playAt);
      playAt += buffer.duration;
      say("speak-status", "Playing (" + provider + "), first audio after " + Math.round(firstAudio) + " ms…");
    }
  } catch (err) {
    if (controller.signal.aborted) { say("speak-status", "Stopped."); return; }
    say("speak-status", "The stream broke off: " + err.message, true); return;
  }
  const samples = concatFloat(parts);
  state.lastSpeech = { blob: wavBlob(samples, rate), text: body.input, voice: body.voice };
  $("speak-download").disabled = false;
  const seconds = samples.length / rate;
  const until = playAt;
  const finish = () => {
    if (speaking !== controller) return;
    $("speak-status").dataset.played = String(seconds);
    say("speak-status", "Played " + seconds.toFixed(1) + " s from " + provider + (fellBack ? " (instead of " + fellBack + ")" : "") +
        "; first audio after " + Math.round(firstAudio || 0) + " ms.");
  };
  const wait = () => (ctx.currentTime >= until ? finish() : setTimeout(wait, 100));
  wait();
}

async function download() {
  if (!state.lastSpeech) return;
  const format = $("speak-format").value;
  let blob = state.lastSpeech.blob;
  if (format !== "wav") {
    say("speak-status", "Synthesising the " + format + " file…");
    const response = await api("v1/audio/speech", { method: "POST", json: { model: "tts-1", input: state.lastSpeech.text,
      voice: state.lastSpeech.voice, response_format: format, speed: Number($("speak-speed").value) || 1 } });
    if (!response.ok) { say("speak-status", "Download failed: " + (await errorText(response)), true); return; }
    blob = await response.blob();
    say("speak-status", "Downloaded " + format + ".");
  }
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = state.lastSpeech.voice + "." + format;
  document.body.append(link); link.click(); link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
}

// -- clone ------------------------------------------------------------------------------------------
let cloneClip = null;
let transcriptEdited = false;

async function transcribeBlob(blob, filename) {
  const form = new FormData();
  form.append("file", blob, filename);
  form.append("model", "whisper-1");
  const response = await api("v1/audio/transcriptions", { method: "POST", body: form });
  if (!response.ok) throw new Error(await errorText(response));
  return (await response.json()).text;
}

async function useCloneClip(blob, filename) {
  cloneClip = { blob, filename };
  const preview = $("clone-preview");
  preview.src = URL.createObjectURL(blob);
  preview.hidden = false;
  if (transcriptEdited && $("clone-transcript").value.trim()) { say("clone-status", "Clip ready."); return; }
  say("clone-status", "Transcribing the clip with the server's speech-to-text…");
  try {
    $("clone-transcript").value = await transcribeBlob(blob, filename);
    say("clone-status", "Transcript filled in; check it, name the voice and save.");
  } catch (err) { say("clone-status", "No transcript (" + err.message + "); type what the clip says.", true); }
}

async function saveClone(event) {
  event.preventDefault();
  if (!cloneClip) { say("clone-status", "Record or upload a clip first.", true); return; }
  const form = new FormData();
  form.append("name", $("clone-name").value.trim());
  form.append("transcript", $("clone-transcript").value.trim());
  if ($("clone-description").value.trim()) form.append("description", $("clone-description").value.trim());
  form.append("file", cloneClip.blob, cloneClip.filename);
  say("clone-status", "Saving…");
  const response = await api("v1/audio/voices", { method: "POST", body: form });
  if (response.status !== 201) { say("clone-status", "Not saved: " + (await errorText(response)), true); return; }
  const voice = await response.json();
  say("clone-status", "Saved " + voice.id + " (spoken by " + [voice.provider].concat(voice.fallbacks).join(", then ") + ").");
  await loadVoices();
  $("speak-voice").value = voice.id;
  showVoiceInfo();
}

// -- transcribe -------------------------------------------------------------------------------------
async function transcribeStreaming(blob, filename) {
  const form = new FormData();
  form.append("file", blob, filename);
  form.append("model", "whisper-1");
  form.append("stream", "true");
  if ($("stt-language").value.trim()) form.append("language", $("stt-language").value.trim());
  $("stt-output").textContent = "";
  say("stt-status", "Transcribing…");
  const started = performance.now();
  const response = await api("v1/audio/transcriptions", { method: "POST", body: form });
  if (!response.ok) { say("stt-status", "Transcription failed: " + (await errorText(response)), true); return; }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let pending = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    pending += value;
    let end;
    while ((end = pending.indexOf("\n\n")) >= 0) {
      const block = pending.slice(0, end);
      pending = pending.slice(end + 2);
      const data = block.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trim()).join("");
      if (!data || data === "[DONE]") continue;
      const message = JSON.parse(data);
      if (message.type === "transcript.text.delta") $("stt-output").textContent += message.delta;
      else if (message.type === "transcript.text.done") {
        $("stt-output").textContent = message.text;
        $("stt-output").dataset.done = "true";
        say("stt-status", "Done in " + Math.round(performance.now() - started) + " ms.");
      } else if (message.type === "error") say("stt-status", "Transcription failed: " + message.error.message, true);
    }
  }
}

// -- converse ---------------------------------------------------------------------------------------
const talk = { socket: null, session: null, playAt: 0, started: 0, frames: [], current: null };

function turnItem(turn, extra) {
  const item = document.createElement("li");
  item.dataset.turn = turn.id;
  const who = document.createElement("span");
  who.className = "speaker";
  who.textContent = (turn.speaker === 0 ? "Voice" : "You (speaker " + turn.speaker + ")") + ": ";
  item.append(who, document.createTextNode(turn.text || ""));
  const meta = document.createElement("span");
  meta.className = "meta";
  const how = turn.generated ? "generated" : turn.transcribed ? "transcribed from your recording" : "typed";
  meta.textContent = " — " + how + (turn.audio_seconds ? ", " + Number(turn.audio_seconds).toFixed(1) + " s of audio" : "") + (extra ? ", " + extra : "");
  item.append(meta);
  $("talk-history").append(item);
}

// A browser cannot set headers on a WebSocket: the key travels as a subprotocol, base64url-encoded,
// beside "sesame-voice", the one the server selects (never in the URL, where logs would keep it).
function socketProtocols() {
  if (!state.key) return ["sesame-voice"];
  const bytes = new TextEncoder().encode(state.key);
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  const encoded = btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  return ["sesame-voice", "sesame-voice-key." + encoded];
}

async function openConversation(event) {
  event.preventDefault();
  if (talk.socket) talk.socket.close();
  $("talk-history").textContent = "";
  const response = await api("v1/sessions", { method: "POST", json: { voice: $("talk-voice").value } });
  if (response.status !== 201) { say("talk-status", "No session: " + (await errorText(response)), true); return; }
  talk.session = await response.json();
  const url = new URL("v1/sessions/" + encodeURIComponent(talk.session.id) + "/ws", location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  const socket = new WebSocket(url, socketProtocols());
  socket.binaryType = "arraybuffer";
  talk.socket = socket;
  socket.addEventListener("open", () => say("talk-status", "Connected to session " + talk.session.id + "."));
  socket.addEventListener("close", () => { if (talk.socket === socket) say("talk-status", "Conversation closed."); });
  socket.addEventListener("error", () => say("talk-status", "The conversation's connection failed" + (state.key ? " (is the API key right?)" : "") + ".", true));
  socket.addEventListener("message", (message) => onTalkMessage(message.data));
  $("talk-form").hidden = false;
}

function onTalkMessage(data) {
  if (data instanceof ArrayBuffer) {
    const samples = new Float32Array(data);
    const ctx = audioContext();
    const buffer = ctx.createBuffer(1, samples.length, talk.rate || 24000);
    buffer.copyToChannel(samples, 0);
    const source = ctx.createBufferSource();
    source.buffer = buffer; source.connect(ctx.destination);
    if (!talk.firstFrame) { talk.firstFrame = performance.now() - talk.started; talk.playAt = ctx.currentTime + 0.05; }
    talk.playAt = Math.max(talk.playAt, ctx.currentTime);
    source.start(talk.playAt);
    talk.playAt += buffer.duration;
    return;
  }
  const message = JSON.parse(data);
  if (message.type === "welcome") say("talk-status", "Session " + message.session_id + " with voice " + message.voice + ".");
  else if (message.type === "turn_added") turnItem(message.turn);
  else if (message.type === "audio_start") {
    talk.rate = message.sample_rate; talk.current = message; talk.firstFrame = 0;
    say("talk-status", "Speaking with " + message.voice + " via " + message.provider + "…");
  } else if (message.type === "done") {
    const start = talk.current || {};
    turnItem({ id: message.turn_id, speaker: 0, text: talk.pendingText, generated: true, audio_seconds: message.duration_ms / 1000 },
      "from " + (start.provider || "?") + ", first audio after " + Math.round(talk.firstFrame) + " ms, done after " +
      Math.round(performance.now() - talk.started) + " ms" + (message.kept ? "" : ", not kept in the history"));
    say("talk-status", "Spoke " + (message.duration_ms / 1000).toFixed(1) + " s.");
  } else if (message.type === "cancelled") say("talk-status", "Cancelled; the turn was not kept.");
  else if (message.type === "error") say("talk-status", "Error: " + message.message + " (" + message.code + ")", true);
}

function sendTalk(payload) {
  if (!talk.socket || talk.socket.readyState !== WebSocket.OPEN) { say("talk-status", "Start a conversation first.", true); return false; }
  talk.socket.send(JSON.stringify(payload));
  return true;
}

// -- server at a glance -----------------------------------------------------------------------------
function facts(pairs) {
  const list = document.createElement("dl");
  list.className = "facts";
  for (const [name, value] of pairs) {
    const dt = document.createElement("dt"); dt.textContent = name;
    const dd = document.createElement("dd");
    if (value instanceof Node) dd.append(value); else dd.textContent = value;
    list.append(dt, dd);
  }
  return list;
}

function metricAverages(text, metric) {
  const sums = {}, counts = {};
  for (const line of text.split("\n")) {
    const match = line.match(/^(\w+)_(sum|count)\{([^}]*)\}\s+([0-9.eE+-]+)$/);
    if (!match || match[1] !== metric) continue;
    const provider = (match[3].match(/provider="([^"]*)"/) || [])[1] || "all";
    (match[2] === "sum" ? sums : counts)[provider] = ((match[2] === "sum" ? sums : counts)[provider] || 0) + Number(match[4]);
  }
  return Object.keys(counts).filter((p) => counts[p] > 0).map((p) => p + ": " + (1000 * sums[p] / counts[p]).toFixed(0) + " ms over " + counts[p]).join("; ") || "no requests yet";
}

async function loadServer() {
  await loadHealth();
  const overview = $("server-overview");
  overview.textContent = "";
  const health = state.health || {};
  const providers = document.createElement("ul");
  for (const [name, info] of Object.entries(Object.assign({}, health.providers, health.speech_to_text))) {
    const item = document.createElement("li");
    item.append(stateBadge(name));
    if (!(health.providers || {})[name]) { item.firstChild.className = "state-" + info.state; item.firstChild.textContent = name + " (" + info.state + ", speech-to-text)"; }
    if (info.error) item.append(": " + info.error);
    providers.append(item);
  }
  const pairs = [["Status", health.status || "unknown"], ["Version", health.version || "?"], ["Providers", providers],
                 ["Default voice", health.default_voice || "?"], ["Voices", String(health.voices ?? "?")],
                 ["Frontends", (health.frontends || []).join(", ")]];
  const info = await api("studio/info");
  if (info.ok) {
    const details = await info.json();
    pairs.push(["Voices folder", details.voices_dir]);
    pairs.push(["HTTP", details.http.host + ":" + details.http.port + (details.http.api_key ? " (API key required)" : " (no API key)")]);
    if (details.wyoming) pairs.push(["Wyoming", "port " + details.wyoming.port]);
    pairs.push(["Zeroconf", details.zeroconf ? "announced" : "off"]);
    const rejected = document.createElement("ul");
    for (const [file, reason] of Object.entries(details.voice_errors)) {
      const item = document.createElement("li"); item.textContent = file + ": " + reason; rejected.append(item);
    }
    pairs.push(["Rejected voice files", rejected.childElementCount ? rejected : "none"]);
  }
  const metrics = await api("metrics");
  if (metrics.ok) {
    const text = await metrics.text();
    pairs.push(["Time to first audio (mean)", metricAverages(text, "sesame_voice_time_to_first_audio_seconds")]);
    pairs.push(["Request duration (mean)", metricAverages(text, "sesame_voice_request_duration_seconds")]);
  }
  overview.append(facts(pairs));
}

async function refreshAll() {
  await loadHealth();
  await loadVoices();
  await loadServer();
}

// -- wiring -----------------------------------------------------------------------------------------
function setup() {
  setupKey();
  $("speak-form").addEventListener("submit", speak);
  $("speak-voice").addEventListener("change", showVoiceInfo);
  $("speak-stop").addEventListener("click", () => { if (speaking) speaking.abort(); if (state.audio) state.audio.suspend().then(() => { state.audio.close(); state.audio = null; }); });
  $("speak-download").addEventListener("click", download);
  $("clone-form").addEventListener("submit", saveClone);
  $("clone-transcript").addEventListener("input", () => { transcriptEdited = true; });
  $("clone-file").addEventListener("change", () => { const file = $("clone-file").files[0]; if (file) useCloneClip(file, file.name); });
  wireRecorder("clone-record", "clone-stop", "clone-status", (wav) => useCloneClip(wav, "recording.wav"));
  $("stt-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const file = $("stt-file").files[0];
    if (!file) { say("stt-status", "Choose a file or record.", true); return; }
    transcribeStreaming(file, file.name);
  });
  wireRecorder("stt-record", "stt-stop", "stt-status", (wav) => transcribeStreaming(wav, "recording.wav"));
  $("talk-start").addEventListener("submit", openConversation);
  $("talk-form").addEventListener("submit", (event) => {
    event.preventDefault();
    if (sendTalk({ type: "add_turn", text: $("talk-text").value, speaker: 1 })) $("talk-text").value = "";
  });
  $("talk-speak").addEventListener("click", () => {
    talk.pendingText = $("talk-text").value; talk.started = performance.now();
    if (sendTalk({ type: "speak", text: talk.pendingText, speaker: 0 })) $("talk-text").value = "";
  });
  $("talk-cancel").addEventListener("click", () => sendTalk({ type: "cancel" }));
  wireRecorder("talk-record", "talk-record-stop", "talk-status", async (wav) => {
    sendTalk({ type: "add_turn", audio: await base64Of(wav), speaker: 1 });
  });
  $("server-refresh").addEventListener("click", loadServer);
  refreshAll();
  setInterval(async () => { await loadHealth(); showVoiceInfo(); }, 15000);
}

// The last speech as the WAV the page played (what "Download" saves as WAV); the tests read it back.
window.studioLastSpeech = () => (state.lastSpeech ? state.lastSpeech.blob : null);
document.addEventListener("DOMContentLoaded", setup);
