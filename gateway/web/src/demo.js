// poolgate's demo page: joins a pool with the rtcpool client, sends camera and microphone
// to every peer, shows each remote endpoint in a tile, and chats over data channels.
import { Pool, signalling, media } from 'rtcpool';
import { io } from 'socket.io-client';
import { afterFirstExchange, installGlareShim } from './chromium-workarounds.js';

// Without it, Chromium connections in pools of three or more often never connect.
installGlareShim();

const params = new URLSearchParams(location.search);
const poolName = params.get('pool') || 'demo';
const transport = params.get('transport') === 'socketio' ? 'socketio' : 'ws';
// ?url= points the page at another ssp server (e.g. pyrtc) instead of the one serving it.
const signallingUrl = params.get('url');

const $ = (id) => document.getElementById(id);
const tiles = new Map(); // peer id -> { el, video, stream, desc }
const chatChannels = new Map(); // peer id -> [RTCDataChannel labelled 'chat']
let pool = null;
let joinedPool = poolName;
let viewerNote = '';
let stopped = false; // after rtc:stop the socket closing is expected, not news

function setStatus(text, isError = false) {
  $('status').textContent = text;
  $('status').classList.toggle('error', isError);
}
const fail = (text) => setStatus(`error: ${text}`, true);

// ICE servers come from the gateway; without them (e.g. a static server) loopback and
// LAN peers still connect, so a failure is not fatal.
async function rtcConfig() {
  try {
    const res = await fetch('/rtc-config');
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const cfg = await res.json();
    if (!Array.isArray(cfg.iceServers)) throw new Error('no iceServers array');
    return cfg;
  } catch (e) {
    return { iceServers: [] };
  }
}

// Some ssp servers (pyrtc) occasionally accept a connection and never answer the
// upgrade; dial again if a socket has not opened within 1.5 s.
async function openWebSocket(url) {
  const deadline = Date.now() + 10000;
  for (;;) {
    const ws = new WebSocket(url);
    const opened = await new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), 1500);
      ws.onopen = () => { clearTimeout(timer); resolve(true); };
      ws.onclose = () => { clearTimeout(timer); resolve(false); };
    });
    ws.onopen = ws.onclose = null;
    if (opened) return ws;
    ws.close();
    if (Date.now() > deadline) throw new Error(`cannot connect to ${url}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

function tileFor(id) {
  let tile = tiles.get(id);
  if (tile) return tile;
  const el = document.createElement('div');
  el.className = 'tile remote';
  el.dataset.peer = id;
  const label = document.createElement('div');
  label.className = 'label';
  label.textContent = id;
  const video = document.createElement('video');
  video.autoplay = true;
  video.playsInline = true;
  const desc = document.createElement('pre');
  desc.className = 'desc';
  desc.textContent = 'null';
  el.append(label, video, desc);
  $('tiles').appendChild(el);
  tile = { el, video, stream: new MediaStream(), desc };
  video.srcObject = tile.stream;
  tiles.set(id, tile);
  return tile;
}

function showDescription(id, description) {
  tileFor(id).desc.textContent = JSON.stringify(description ?? null, null, 1);
}

function removeTile(id) {
  const tile = tiles.get(id);
  if (!tile) return;
  tile.el.remove();
  tiles.delete(id);
}

function addTrack(id, track) {
  const tile = tileFor(id);
  tile.stream.addTrack(track);
  track.addEventListener('ended', () => tile.stream.removeTrack(track));
  // Browsers may refuse to autoplay sound before a user gesture: play muted then,
  // and let a click on the tile turn the sound on.
  tile.video.play().catch(() => {
    tile.video.muted = true;
    tile.video.title = 'click to unmute';
    tile.el.addEventListener('click', () => { tile.video.muted = false; }, { once: true });
    tile.video.play().catch(() => {});
  });
}

function chatLine(who, text) {
  const line = document.createElement('div');
  const whoEl = document.createElement('span');
  whoEl.className = 'who';
  whoEl.textContent = who + ': ';
  line.append(whoEl, document.createTextNode(text));
  $('chat-log').appendChild(line);
  $('chat-log').scrollTop = $('chat-log').scrollHeight;
}

function addChatChannel(id, channel) {
  if (!chatChannels.has(id)) chatChannels.set(id, []);
  chatChannels.get(id).push(channel);
  channel.addEventListener('message', (evt) => chatLine(id, String(evt.data)));
}

// Both ends open a 'chat' channel, so a pair has two; send on one of them only.
function sendChat(text) {
  let sent = 0;
  for (const list of chatChannels.values()) {
    const open = list.find((c) => c.readyState === 'open');
    if (open) { open.send(text); sent++; }
  }
  chatLine(pool && pool.id ? `me (${pool.id})` : 'me', sent ? text : `${text}  [nobody to send to]`);
}

function listen(p, sig) {
  let joined = false;
  p.events.addEventListener('peer', (evt) => {
    const conn = evt.detail.connection;
    tileFor(conn.id);
    const open = () => addChatChannel(conn.id, conn.dataChannel('chat', {}, true));
    // Pool.connections and Pool._raw_connections list the same connections in one order.
    if (joined) open(); else afterFirstExchange(p._raw_connections[p.connections.indexOf(conn)], open);
  });
  p.events.addEventListener('track', (evt) => addTrack(evt.connection, evt.track));
  p.events.addEventListener('datachannel', (evt) => {
    if (evt.channel.label === 'chat') addChatChannel(evt.connection, evt.channel);
  });
  p.events.addEventListener('describe', (evt) => {
    showDescription(evt.detail.connection.id, evt.detail.description);
  });
  p.events.addEventListener('close', (evt) => {
    if (!evt.detail) return; // the whole pool closed ('stop' reports why)
    removeTile(evt.detail.id);
    chatChannels.delete(evt.detail.id);
    chatLine(evt.detail.id, '(left)');
  });
  p.events.addEventListener('stop', () => { stopped = true; fail('the server closed the pool'); });
  p.events.addEventListener('join', () => {
    joined = true;
    const you = document.querySelector('#local-tile .label');
    if (you) you.textContent = `you (${p.id})`;
    setStatus(`joined as ${p.id} in pool ${joinedPool}${viewerNote}`);
    // rtcpool fills in the initial peers' descriptions only after their 'peer' events.
    for (const conn of p.connections) showDescription(conn.id, conn.description);
  });

  const t = sig.transceiver;
  t.addEventListener('rtc:joined', (evt) => { joinedPool = evt.detail.pool || poolName; });
  t.addEventListener('rtc:error', (evt) => fail(evt.detail.message || JSON.stringify(evt.detail)));
  t.addEventListener('error', (evt) => fail(evt.detail.message));
  if (transport === 'ws') {
    t.socket.addEventListener('close', (evt) => {
      if (!stopped) fail(`signalling connection closed (code ${evt.code})`);
    });
  } else {
    t.socket.on('connect_error', (e) => fail(`socket.io: ${e.message}`));
    t.socket.on('disconnect', (reason) => {
      if (reason !== 'io client disconnect') fail(`socket.io disconnected: ${reason}`);
    });
  }
}

async function main() {
  const target = signallingUrl ||
    (transport === 'ws' ? `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws` : 'socket.io');
  setStatus(`connecting to ${target} (pool ${poolName})…`);
  const config = await rtcConfig();

  let local = null;
  try {
    local = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
    $('local').srcObject = local;
  } catch (e) {
    viewerNote = ` — viewer only: no camera/microphone (${e.message})`;
    $('local-tile').remove();
  }

  const sig = transport === 'ws'
    ? new signalling.websocket(await openWebSocket(target))
    : new signalling.socket.io(signallingUrl ? io(signallingUrl) : io());
  pool = new Pool(config, sig);
  listen(pool, sig);
  // Created before joining so that its tracks reach the first peers too.
  if (local) new media.ManagedStream(local, pool);
  pool.join(poolName);
}

$('chat-form').addEventListener('submit', (evt) => {
  evt.preventDefault();
  const input = evt.target.elements.text;
  if (input.value) sendChat(input.value);
  input.value = '';
});

main().catch((e) => fail(e.message));
