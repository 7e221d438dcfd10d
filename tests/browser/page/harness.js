// Page side of the browser test driver: one rtcpool endpoint per page, controlled by
// the Rust integration tests through driver.mjs evaluating `window.harness.*` calls.
// Everything returned to the driver is plain JSON.
import { Pool, signalling, media } from 'rtcpool';
import { io } from 'socket.io-client';
// The demo page's workaround for Chromium's glare bug; the tests use the same file.
import { afterFirstExchange, installGlareShim } from '../../../gateway/web/src/chromium-workarounds.js';

const JOIN_TIMEOUT_MS = 10000;
// pyrtc's accept loop sometimes never answers an upgrade: give up on a socket that has
// not opened by then and dial again.
const WS_OPEN_TIMEOUT_MS = 1500;

let pool = null;
let signaller = null;
let leaving = false;
const raw = new Map(); // peer id -> RTCPeerConnection (rtcpool only exposes an unkeyed list)
const channels = new Map(); // peer id -> [RTCDataChannel] (ours and theirs)
const pongWaiters = new Map(); // `${peer}\n${text}` -> [resolve]
const closed = [];
const describes = [];
const errors = [];
const warnings = [];
let stopped = false;
let joinedPool = null;
const trace = []; // signalling messages and connection state changes, for diagnosing failures
const t0 = Date.now();

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const status = (text) => { document.getElementById('status').textContent = text; };

function sameOrigin(path, scheme) {
  const secure = location.protocol === 'https:';
  return `${scheme}${secure ? 's' : ''}://${location.host}${path}`;
}

// The page learns ICE servers from the gateway; a static server (or pyrtc) has no such
// endpoint, and loopback-only tests need none, so any failure means "no ICE servers".
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

async function openWebSocket(url, deadline) {
  for (let attempt = 1; ; attempt++) {
    const ws = new WebSocket(url);
    const started = Date.now();
    const opened = await new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), WS_OPEN_TIMEOUT_MS);
      ws.onopen = () => { clearTimeout(timer); resolve(true); };
      ws.onclose = () => { clearTimeout(timer); resolve(false); };
    });
    ws.onopen = ws.onclose = null;
    if (opened) return ws;
    ws.close();
    console.warn(`harness: WebSocket ${url} did not open (attempt ${attempt}), retrying`);
    if (Date.now() >= deadline) {
      throw new Error(`WebSocket ${url} did not open after ${attempt} attempts`);
    }
    // A refused connection fails at once; do not spin on it.
    if (Date.now() - started < 200) await sleep(200);
  }
}

function addChannel(peer, channel) {
  if (!channels.has(peer)) channels.set(peer, []);
  channels.get(peer).push(channel);
  channel.binaryType = 'arraybuffer';
  channel.addEventListener('message', (evt) => {
    if (typeof evt.data !== 'string') {
      // Binary messages are recorded and echoed back as they came.
      const bytes = Array.from(new Uint8Array(evt.data));
      binaryReceived.push({ peer, label: channel.label, bytes });
      channel.send(evt.data);
      return;
    }
    if (evt.data.startsWith('ping:')) {
      channel.send('pong:' + evt.data.slice(5));
    } else if (evt.data.startsWith('pong:')) {
      const key = `${peer}\n${evt.data.slice(5)}`;
      for (const resolve of pongWaiters.get(key) || []) resolve(true);
      pongWaiters.delete(key);
    }
  });
}

function attachTrack(peer, track) {
  let video = document.querySelector(`video[data-peer="${CSS.escape(peer)}"]`);
  if (!video) {
    video = document.createElement('video');
    video.dataset.peer = peer;
    video.muted = true; // muted so autoplay is allowed without a user gesture
    video.autoplay = true;
    video.playsInline = true;
    video.srcObject = new MediaStream();
    document.getElementById('media').appendChild(video);
  }
  video.srcObject.addTrack(track);
  video.play().catch(() => {});
}

// If a connection still has no local candidate 3 s after its last signalling change, say
// so: that is the Chromium glare bug that chromium-workarounds.js works around (or a new one).
const GATHER_STUCK_MS = 3000;
function watchGathering(peer, pc) {
  let since = Date.now();
  let candidates = 0;
  let reported = false;
  pc.addEventListener('icecandidate', (evt) => { if (evt.candidate) candidates++; });
  pc.addEventListener('signalingstatechange', () => { since = Date.now(); candidates = 0; });
  const timer = setInterval(() => {
    if (pc.signalingState === 'closed') { clearInterval(timer); return; }
    if (reported || pc.signalingState !== 'stable' || pc.iceGatheringState !== 'gathering' ||
        candidates > 0 || Date.now() - since < GATHER_STUCK_MS) return;
    reported = true;
    warnings.push(`no ICE candidate gathered toward ${peer} within ${GATHER_STUCK_MS} ms`);
    note(`  ${peer.slice(0, 8)} ICE gathering stuck`);
  }, 500);
}

let joined = false; // set on 'join'; 'peer' events before it are for earlier endpoints
function listen(p) {
  p.events.addEventListener('peer', (evt) => {
    const conn = evt.detail.connection;
    // Pool.connections and Pool._raw_connections are built from the same object in the
    // same order, and the new connection is already in it when 'peer' fires.
    const i = p.connections.indexOf(conn);
    const pc = p._raw_connections[i];
    raw.set(conn.id, pc);
    const short = conn.id.slice(0, 8);
    for (const prop of ['signalingState', 'connectionState', 'iceConnectionState']) {
      pc.addEventListener(prop.toLowerCase() + 'change', () => note(`  ${short} ${prop}=${pc[prop]}`));
    }
    pc.addEventListener('negotiationneeded', () => note(`  ${short} negotiationneeded`));
    watchGathering(conn.id, pc);
    if (!openChannels) return; // a viewer-only page: it never offers
    const open = () => addChannel(conn.id, conn.dataChannel('harness', {}, true));
    if (joined) open(); else afterFirstExchange(pc, open);
  });
  p.events.addEventListener('join', () => { joined = true; });
  p.events.addEventListener('datachannel', (evt) => addChannel(evt.connection, evt.channel));
  p.events.addEventListener('track', (evt) => attachTrack(evt.connection, evt.track));
  p.events.addEventListener('describe', (evt) => {
    describes.push({ id: evt.detail.connection.id, description: evt.detail.description });
  });
  p.events.addEventListener('close', (evt) => {
    // detail is the ManagedConnection that closed, or null when the whole pool closed.
    const id = evt.detail && evt.detail.id;
    if (id && !closed.includes(id)) closed.push(id);
  });
  p.events.addEventListener('stop', () => { stopped = true; });
}

// One short line per signalling message, e.g. "> rtc:sdp to=1a2b3c4d offer".
function summarize(type, data) {
  const ids = ['to', 'for', 'from', 'peer', 'id', 'client_id']
    .filter((k) => typeof data[k] === 'string').map((k) => `${k}=${data[k].slice(0, 8)}`);
  const extra = data.description && data.description.type ? [data.description.type]
    : 'candidate' in data ? [data.candidate ? 'candidate' : 'end-of-candidates'] : [];
  return [type, ...ids, ...extra].join(' ');
}
const note = (line) => trace.push(`${String(Date.now() - t0).padStart(6)} ${line}`);

function watchSignalling(sig, transport) {
  const t = sig.transceiver;
  const send = t.send.bind(t);
  t.send = (type, data) => { note('> ' + summarize(type, data)); send(type, data); };
  for (const type of ['rtc:joined', 'rtc:peer', 'rtc:sdp', 'rtc:candidate', 'rtc:close',
    'rtc:describe', 'rtc:stop', 'rtc:error']) {
    t.addEventListener(type, (evt) => note('< ' + summarize(type, evt.detail || {})));
  }
  t.addEventListener('rtc:joined', (evt) => { joinedPool = evt.detail.pool; });
  t.addEventListener('rtc:error', (evt) => errors.push(`rtc:error ${JSON.stringify(evt.detail)}`));
  t.addEventListener('error', (evt) => errors.push(`${evt.detail.message}: ${evt.detail.data}`));
  // leave() and rtc:stop both close the socket through pool.close(); only other
  // closes are errors.
  if (transport === 'ws') {
    t.socket.addEventListener('close', (evt) => {
      if (!leaving && !stopped) errors.push(`signalling WebSocket closed (code ${evt.code})`);
    });
  } else {
    t.socket.on('connect_error', (e) => errors.push(`socket.io connect_error: ${e.message}`));
    t.socket.on('disconnect', (reason) => {
      if (reason !== 'io client disconnect') errors.push(`socket.io disconnected: ${reason}`);
    });
  }
}

// channel: false makes a viewer-only page (with media: false): no data channel, so it
// never offers and the other end must.
let openChannels = true;
async function join({
  transport = 'ws', pool: name, media: withMedia = false, url, glareShim = true, channel = true,
} = {}) {
  openChannels = channel;
  if (pool) throw new Error('harness.join: this page already joined a pool');
  if (glareShim) installGlareShim(); // glareShim: false reproduces the bug it avoids
  if (transport !== 'ws' && transport !== 'socketio') {
    throw new Error(`harness.join: unknown transport ${JSON.stringify(transport)}`);
  }
  const deadline = Date.now() + JOIN_TIMEOUT_MS;
  const target = url || (transport === 'ws' ? sameOrigin('/ws', 'ws') : '(same origin)/socket.io/');
  status(`connecting to ${target}`);

  const work = (async () => {
    const config = await rtcConfig();
    if (transport === 'ws') {
      signaller = new signalling.websocket(await openWebSocket(target, deadline));
    } else {
      // socket.io-client buffers emits until connected and reconnects by itself.
      signaller = new signalling.socket.io(url ? io(url) : io());
    }
    watchSignalling(signaller, transport);
    pool = new Pool(config, signaller);
    window.harness.pool = pool; // for ad-hoc debugging from the driver
    listen(pool);
    if (withMedia) {
      const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
      // Before join, so the tracks go to the first peers as they are created.
      new media.ManagedStream(stream, pool);
    }
    const joinEvent = new Promise((resolve) => pool.events.addEventListener('join', resolve, { once: true }));
    pool.join(name);
    await joinEvent;
    return pool.id;
  })();

  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(
      `harness.join: not joined to pool ${JSON.stringify(name)} via ${transport} ${target} ` +
      `within ${JOIN_TIMEOUT_MS / 1000} s` + (errors.length ? `; errors: ${errors.join('; ')}` : ''))),
    Math.max(0, deadline - Date.now()));
  });
  try {
    const id = await Promise.race([work, timeout]);
    status(`joined as ${id} in pool ${joinedPool ?? name}`);
    return id;
  } catch (e) {
    errors.push(String(e && e.message || e));
    status(`error: ${e.message}`);
    throw e;
  } finally {
    clearTimeout(timer);
  }
}

function state() {
  const peers = pool ? pool.connections.map((conn) => {
    const pc = raw.get(conn.id);
    return {
      id: conn.id,
      description: conn.description ?? null,
      connectionState: pc ? pc.connectionState : null,
      iceConnectionState: pc ? pc.iceConnectionState : null,
      signalingState: pc ? pc.signalingState : null,
      channelsOpen: (channels.get(conn.id) || []).filter((c) => c.readyState === 'open').length,
    };
  }) : [];
  return JSON.parse(JSON.stringify({
    id: pool ? pool.id : null, pool: joinedPool, peers, closed, describes, stopped, errors, warnings,
  }));
}

async function framesDecoded() {
  const out = {};
  for (const conn of pool ? pool.connections : []) {
    const pc = raw.get(conn.id);
    let total = 0;
    if (pc) {
      (await pc.getStats()).forEach((s) => {
        if (s.type === 'inbound-rtp' && s.kind === 'video') total += s.framesDecoded || 0;
      });
    }
    out[conn.id] = total;
  }
  return out;
}

// Per peer, what arrives from it: one entry per inbound RTP stream with its codec and how
// much was decoded (video frames; audio samples that were real, not concealment).
async function inbound() {
  const out = {};
  for (const conn of pool ? pool.connections : []) {
    const pc = raw.get(conn.id);
    const streams = [];
    if (pc) {
      const stats = await pc.getStats();
      stats.forEach((s) => {
        if (s.type !== 'inbound-rtp') return;
        const codec = s.codecId && stats.get(s.codecId);
        streams.push({
          kind: s.kind,
          codec: codec ? codec.mimeType : null,
          fmtp: codec ? codec.sdpFmtpLine || '' : '',
          framesDecoded: s.framesDecoded || 0,
          samples: (s.totalSamplesReceived || 0) - (s.concealedSamples || 0),
        });
      });
    }
    out[conn.id] = streams;
  }
  return out;
}

// Per peer, this page's DTLS role ('client' or 'server') on its transport.
async function dtlsRoles() {
  const out = {};
  for (const conn of pool ? pool.connections : []) {
    const pc = raw.get(conn.id);
    if (!pc) continue;
    (await pc.getStats()).forEach((s) => {
      if (s.type === 'transport' && s.dtlsRole) out[conn.id] = s.dtlsRole;
    });
  }
  return out;
}

// Per peer, the ICE and DTLS picture: transport states, the candidate pairs and the remote
// candidates, to tell where a connection that does not come up is stuck.
async function transports() {
  const out = {};
  for (const conn of pool ? pool.connections : []) {
    const pc = raw.get(conn.id);
    if (!pc) continue;
    const stats = await pc.getStats();
    const entry = { connectionState: pc.connectionState, ice: pc.iceConnectionState, transports: [], pairs: [], remote: [] };
    stats.forEach((s) => {
      if (s.type === 'transport') {
        entry.transports.push({ ice: s.iceState, dtls: s.dtlsState, role: s.dtlsRole, pair: s.selectedCandidatePairId || null });
      } else if (s.type === 'candidate-pair') {
        entry.pairs.push({ id: s.id, state: s.state, nominated: s.nominated, sent: s.requestsSent, got: s.responsesReceived, rin: s.requestsReceived });
      } else if (s.type === 'remote-candidate') {
        entry.remote.push(`${s.address}:${s.port}/${s.protocol}`);
      }
    });
    const remote = pc.currentRemoteDescription ? pc.currentRemoteDescription.sdp : '';
    entry.remoteUfrag = (remote.match(/a=ice-ufrag:(\S+)/) || [])[1] || null;
    out[conn.id] = entry;
  }
  return out;
}

// The page's audio transceiver toward a peer (the fake microphone's, with media: true).
function audioTransceiver(peerId) {
  const pc = raw.get(peerId);
  const t = pc && pc.getTransceivers().find((x) => x.sender.track && x.sender.track.kind === 'audio');
  if (!t) throw new Error(`harness: no audio transceiver toward ${peerId}`);
  return t;
}

/**
 * At wall-clock time `atMs` (Date.now() scale), flips the audio transceiver toward `peerId`
 * between sendrecv and recvonly: a change that needs an offer, made at an instant the test
 * also uses on the other side to force a collision. Returns the direction it will set.
 */
function toggleAudioAt(peerId, atMs) {
  const t = audioTransceiver(peerId);
  const next = t.direction === 'sendrecv' ? 'recvonly' : 'sendrecv';
  setTimeout(() => { t.direction = next; }, Math.max(0, atMs - Date.now()));
  return next;
}

/** Whether the last toggle toward `peerId` is negotiated and the connection is stable. */
function toggleSettled(peerId, direction) {
  const pc = raw.get(peerId);
  const t = audioTransceiver(peerId);
  const sending = (t.currentDirection || '').startsWith('send');
  return {
    settled: pc.signalingState === 'stable' && t.direction === direction &&
      sending === (direction === 'sendrecv'),
    signalingState: pc.signalingState,
    connectionState: pc.connectionState,
    direction: t.direction,
    currentDirection: t.currentDirection,
  };
}

/** Opens a data channel labelled `label` to `peerId` now (a renegotiation this page offers). */
function openChannel(peerId, label) {
  const conn = pool && pool.connections.find((c) => c.id === peerId);
  if (!conn) throw new Error(`harness.openChannel: no connection to ${peerId}`);
  addChannel(peerId, conn.dataChannel(label, {}, true));
  return label;
}

// Binary messages this page received: {peer, label, bytes}.
const binaryReceived = [];

/** Sends `bytes` (an array of 0..255) as one binary message on an open channel to `peerId`. */
async function sendBinary(peerId, bytes, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs;
  let channel;
  while (!(channel = (channels.get(peerId) || []).find((c) => c.readyState === 'open'))) {
    if (Date.now() >= deadline) throw new Error(`harness.sendBinary: no open data channel to ${peerId}`);
    await sleep(50);
  }
  channel.send(new Uint8Array(bytes));
  return channel.label;
}

async function ping(peerId, text, timeoutMs = 10000, label = null) {
  const deadline = Date.now() + timeoutMs;
  // Channels open a little after the peer connection does; wait for one.
  let channel;
  const usable = (c) => c.readyState === 'open' && (label === null || c.label === label);
  // The newest first: after a rebuild the old channel may still look open for a moment.
  while (!(channel = (channels.get(peerId) || []).findLast(usable))) {
    if (Date.now() >= deadline) throw new Error(`harness.ping: no open data channel to ${peerId}`);
    await sleep(50);
  }
  const key = `${peerId}\n${text}`;
  const pong = new Promise((resolve) => {
    if (!pongWaiters.has(key)) pongWaiters.set(key, []);
    pongWaiters.get(key).push(resolve);
  });
  channel.send('ping:' + text);
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`harness.ping: no pong:${text} from ${peerId}`)),
      Math.max(0, deadline - Date.now()));
  });
  try {
    return await Promise.race([pong, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function leave() {
  if (!pool) return;
  leaving = true;
  pool.close();
  status('left');
}

// rtcpool rejects addIceCandidate for candidates of an offer it ignored during glare,
// and leaves that promise unhandled; that is expected noise, not a test failure.
window.addEventListener('unhandledrejection', (evt) => {
  const msg = `unhandled rejection: ${evt.reason && evt.reason.message || evt.reason}`;
  (/addIceCandidate/.test(msg) ? warnings : errors).push(msg);
});
window.addEventListener('error', (evt) => errors.push(`uncaught: ${evt.message}`));

window.harness = { join, state, framesDecoded, inbound, transports, dtlsRoles, openChannel, toggleAudioAt, toggleSettled, ping, sendBinary, binaryReceived: () => binaryReceived.slice(), leave, trace: () => trace.slice(), pool: null };
