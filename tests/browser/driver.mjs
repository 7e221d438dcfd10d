#!/usr/bin/env node
// Browser test driver: a long-running process that the Rust integration tests control
// with JSON lines on stdin/stdout (protocol in README.md). It runs Debian's headless
// Chromium through playwright-core; it never downloads a browser.
import fs from 'node:fs';
import readline from 'node:readline';

const CHROMIUM = '/usr/bin/chromium';
const FLAGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream',
  // Without this Chromium gathers no candidates in a loopback-only namespace.
  '--allow-loopback-in-peer-connection',
  // Candidates must carry 127.0.0.1, not an mDNS name nobody can resolve here.
  '--disable-features=WebRtcHideLocalIpsWithMdns',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

function die(msg) {
  process.stderr.write(`driver.mjs: ${msg}\n`);
  process.exit(1);
}

// Hard rule: WebRTC traffic must stay on loopback, so only run inside a network
// namespace whose sole interface is lo. /proc/self/net/dev lists the interfaces of
// *this process's* namespace; /sys/class/net would not do, because sysfs shows the
// namespace of whoever mounted it (the host's, under a plain `unshare -n`).
function checkLoopbackOnly() {
  let names;
  try {
    names = fs.readFileSync('/proc/self/net/dev', 'utf8').split('\n').slice(2)
      .map((line) => line.split(':')[0].trim()).filter(Boolean);
  } catch (e) {
    die(`cannot list network interfaces (/proc/self/net/dev): ${e.message}`);
  }
  const others = names.filter((n) => n !== 'lo');
  if (others.length) {
    die(`refusing to start: network interfaces other than lo present (${others.join(', ')}); ` +
      'run me inside a loopback-only network namespace (e.g. unshare -n, shared/bin/lo-only)');
  }
}

checkLoopbackOnly();
if (!fs.existsSync(CHROMIUM)) {
  die(`${CHROMIUM} not found: install Debian's chromium (apt-get install -y --no-install-recommends chromium)`);
}
let chromium;
try {
  ({ chromium } = await import('playwright-core'));
} catch (e) {
  die(`playwright-core is not installed (run npm install in tests/browser): ${e.message}`);
}

let browser;
try {
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS });
} catch (e) {
  die(`could not launch ${CHROMIUM}: ${e.message}`);
}
let quitting = false;
browser.on('disconnected', () => {
  if (!quitting) die('Chromium exited unexpectedly');
});

const pages = new Map(); // name -> { context, page }
const queues = new Map(); // name -> promise tail: commands for one page run in order

const reply = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');
const log = (name, text) => process.stderr.write(`[${name}] ${text}\n`);

function pageOf(name) {
  const entry = pages.get(name);
  if (!entry) throw new Error(`no open page named ${JSON.stringify(name)}`);
  return entry.page;
}

async function open(name, url) {
  if (pages.has(name)) throw new Error(`page ${JSON.stringify(name)} is already open`);
  // A context per page: separate storage, so pages act as separate browsers.
  const context = await browser.newContext({ permissions: ['camera', 'microphone'] });
  const page = await context.newPage();
  pages.set(name, { context, page });
  page.on('console', (m) => log(name, `console.${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => log(name, `pageerror: ${e.message}`));
  await page.goto(url);
}

async function close(name) {
  const entry = pages.get(name);
  if (!entry) throw new Error(`no open page named ${JSON.stringify(name)}`);
  pages.delete(name);
  await entry.context.close();
}

async function run(msg) {
  switch (msg.cmd) {
    case 'open': await open(msg.page, msg.url); return {};
    case 'eval': {
      // A string is evaluated as an expression; a promise result is awaited.
      const value = await pageOf(msg.page).evaluate(msg.expr);
      return { value: value === undefined ? null : value };
    }
    case 'close': await close(msg.page); return {};
    default: throw new Error(`unknown cmd ${JSON.stringify(msg.cmd)}`);
  }
}

async function shutdown(code) {
  quitting = true;
  await browser.close().catch(() => {});
  process.exit(code);
}

function handle(line) {
  if (!line.trim()) return;
  let msg;
  try {
    msg = JSON.parse(line);
    if (typeof msg !== 'object' || msg === null) throw new Error('not an object');
  } catch (e) {
    reply({ id: null, ok: false, error: `bad command line: ${e.message}` });
    return;
  }
  if (msg.cmd === 'quit') {
    reply({ id: msg.id, ok: true });
    shutdown(0);
    return;
  }
  // Different pages proceed concurrently (one page's eval may wait on another's
  // progress); commands for the same page keep their order.
  const key = typeof msg.page === 'string' ? msg.page : '';
  const prev = queues.get(key) || Promise.resolve();
  const next = prev.then(() => run(msg)).then(
    (res) => reply({ id: msg.id, ok: true, ...res }),
    (e) => reply({ id: msg.id, ok: false, error: String(e && e.message || e) }),
  );
  queues.set(key, next);
}

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', handle);
rl.on('close', () => { if (!quitting) shutdown(0); });
