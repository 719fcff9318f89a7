// The chat page: sends each message to /v1/sessions/{user}/messages and draws the streamed
// events (ranked → intro → item … → done). Every text from the catalogue or the model is set
// with textContent, never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const user = localStorage.getItem("recagent-user") || `web-${crypto.randomUUID().slice(0, 12)}`;
localStorage.setItem("recagent-user", user);
let token = sessionStorage.getItem("recagent-token") || "";
let picture = null;
let voice = null;

function el(tag, attrs = {}, text = "") {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (text) node.textContent = text;
  return node;
}

function headers(extra = {}) {
  return token ? { ...extra, Authorization: `Bearer ${token}` } : extra;
}

async function askToken() {
  const dialog = $("token-dialog");
  dialog.showModal();
  await new Promise((done) => dialog.addEventListener("close", done, { once: true }));
  token = $("token").value.trim();
  sessionStorage.setItem("recagent-token", token);
}

function showNotice(text) {
  const box = $("notice");
  box.textContent = text;
  box.hidden = !text;
}

async function send(message) {
  const body = new FormData();
  body.set("message", message);
  body.set("k", "4");
  if (picture) body.set("image", picture, picture.name);
  if (voice) body.set("audio", voice, "voice.webm");
  const log = $("log");
  const said = el("li", { class: "user" }, message || (voice ? "(a voice message)" : "(a picture)"));
  log.append(said);
  const reply = el("li", { class: "reply" });
  const intro = el("p", { class: "intro" }, "…");
  const cards = el("div", { class: "cards" });
  reply.append(intro, cards);
  log.append(reply);
  clearAttachments();
  let response = await fetch(`/v1/sessions/${encodeURIComponent(user)}/messages`, {
    method: "POST", body, headers: headers(),
  });
  if (response.status === 401) {
    await askToken();
    reply.remove(); said.remove();
    return send(message);
  }
  if (!response.ok) {
    const problem = await response.json().catch(() => ({ error: response.statusText }));
    intro.textContent = problem.error;
    intro.classList.add("error");
    return;
  }
  let streamed = "";
  await readEvents(response, (event, data) => {
    if (event === "understood") {
      const wanted = data.constraints.map((c) => (c.kind === "exclude" ? `not ${c.words || c.value}` : c.words || c.value));
      intro.textContent = wanted.length ? `Looking for: ${[...new Set(wanted)].join(", ")}…` : "Looking…";
    } else if (event === "ranked" && data.provisional) {
      const titles = data.items.map((i) => i.title).join(", ");
      intro.textContent = data.items.length ? `First look: ${titles}… (reading your message)` : "Reading your message…";
    } else if (event === "ranked") {
      intro.textContent = data.items.length ? `Found ${data.items.map((i) => i.title).join(", ")}…` : "Nothing fits.";
    } else if (event === "token") {
      streamed += data.text;
      intro.textContent = streamed;
    } else if (event === "intro") {
      intro.textContent = data.text;
    } else if (event === "item") {
      cards.append(card(data));
    } else if (event === "done") {
      reply.dataset.done = "yes";
      const fallback = data.notices.filter((n) => /LLM/.test(n));
      showNotice(fallback.join(" "));
      for (const notice of data.notices.filter((n) => !/LLM/.test(n))) {
        reply.append(el("p", { class: "notices" }, notice));
      }
    } else if (event === "error") {
      intro.textContent = data.error;
      intro.classList.add("error");
      reply.dataset.done = "yes";
    }
    reply.scrollIntoView({ block: "end", behavior: "smooth" });
  });
}

async function readEvents(response, onEvent) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true }).replace(/\r\n/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).trim());
      }
      if (data.length) onEvent(event, JSON.parse(data.join("\n")));
    }
  }
}

function card(item) {
  const box = el("article", { class: "card", "data-id": item.id });
  box.append(el("h2", {}, `${item.number}. ${item.title}`));
  if (item.image_url) {
    const img = el("img", { alt: item.title, loading: "lazy" });
    loadMedia(item.image_url).then((url) => { if (url) img.src = url; });
    box.append(img);
  }
  if (item.audio_url) {
    const audio = el("audio", { controls: "", preload: "none", "aria-label": `Sound of ${item.title}` });
    loadMedia(item.audio_url).then((url) => { if (url) audio.src = url; });
    box.append(audio);
  }
  box.append(el("p", { class: "why-text" }, item.explanation));
  box.append(el("p", { class: "cited" }, `from: ${item.cited_fields.join(", ")} (${item.explanation_source})`));
  const details = el("details");
  details.append(el("summary", {}, "Why this item"));
  const table = el("table");
  for (const [key, value] of Object.entries(item.breakdown)) {
    const row = el("tr");
    row.append(el("td", {}, key), el("td", {}, Number(value).toFixed(4)));
    table.append(row);
  }
  details.append(table);
  for (const reason of item.reasons || []) details.append(el("p", {}, reason));
  box.append(details);
  const actions = el("div", { class: "actions" });
  for (const [kind, label] of [["like", "Like"], ["dislike", "Not this"]]) {
    const button = el("button", { type: "button", "aria-pressed": "false", "data-kind": kind }, label);
    button.addEventListener("click", async () => {
      const ok = await feedback(item.id, kind);
      if (ok) for (const b of actions.querySelectorAll("button")) b.setAttribute("aria-pressed", String(b === button));
    });
    actions.append(button);
  }
  box.append(actions);
  return box;
}

const mediaCache = new Map();
async function loadMedia(url) {
  // fetched with the token (an <img src> cannot send it), then shown from a blob URL
  if (!mediaCache.has(url)) {
    mediaCache.set(url, fetch(url, { headers: headers() })
      .then((r) => (r.ok ? r.blob() : null))
      .then((b) => (b ? URL.createObjectURL(b) : null))
      .catch(() => null));
  }
  return mediaCache.get(url);
}

async function feedback(itemId, kind) {
  const response = await fetch(`/v1/sessions/${encodeURIComponent(user)}/feedback`, {
    method: "POST",
    headers: headers({ "Content-Type": "application/json" }),
    body: JSON.stringify({ item_id: itemId, kind }),
  });
  if (!response.ok) {
    const problem = await response.json().catch(() => ({ error: response.statusText }));
    showNotice(problem.error);
  }
  return response.ok;
}

function clearAttachments() {
  picture = null;
  voice = null;
  $("picture").value = "";
  $("attached").hidden = true;
}

function showAttached() {
  const parts = [];
  if (picture) parts.push(`picture: ${picture.name}`);
  if (voice) parts.push("voice message");
  $("attached").textContent = parts.length ? `Attached ${parts.join(", ")}` : "";
  $("attached").hidden = !parts.length;
}

function setUpMicrophone() {
  if (!navigator.mediaDevices || !window.MediaRecorder) return;
  const mic = $("mic");
  mic.hidden = false;
  let recorder = null;
  mic.addEventListener("click", async () => {
    if (recorder) { recorder.stop(); return; }
    try {
      const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
      const chunks = [];
      recorder = new MediaRecorder(stream);
      recorder.ondataavailable = (e) => chunks.push(e.data);
      recorder.onstop = () => {
        stream.getTracks().forEach((t) => t.stop());
        voice = new Blob(chunks, { type: recorder.mimeType || "audio/webm" });
        recorder = null;
        mic.setAttribute("aria-pressed", "false");
        showAttached();
      };
      recorder.start();
      mic.setAttribute("aria-pressed", "true");
    } catch (error) {
      showNotice(`The microphone is not available: ${error.message}`);
    }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  $("ask").addEventListener("submit", (event) => {
    event.preventDefault();
    const message = $("message").value.trim();
    if (!message && !picture && !voice) return;
    $("message").value = "";
    send(message).catch((error) => showNotice(`The request failed: ${error.message}`));
  });
  $("picture").addEventListener("change", (event) => {
    picture = event.target.files[0] || null;
    showAttached();
  });
  $("reset").addEventListener("click", async () => {
    await fetch(`/v1/sessions/${encodeURIComponent(user)}`, { method: "DELETE", headers: headers() });
    $("log").replaceChildren();
    showNotice("");
  });
  setUpMicrophone();
  $("message").focus();
});
