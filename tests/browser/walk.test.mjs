// The web pages in headless Chromium against a real server with a seeded world (seed_e2e):
// every role logs in; the supervisor sees a synced visit with its photos; the enterprise submits
// evidence with a photo; the inspector verifies; the supervisor closes the major hazard; the
// dashboard's figures equal the hazard lists; another township's supervisor sees none of it; the
// visits are filtered by date on the server; an expired access token is refreshed (the seed
// binary moves the server's clock when told `advance <seconds>` on stdin); every page offers
// exactly the actions the server allows each role.
// Run through run.sh (it builds the seed binary and sets SEED_BIN).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const OUT = join(here, 'out');
const SEED_BIN = process.env.SEED_BIN;
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

let seedProc, world, browser;
/** Lines the seed binary prints after the world, waited for by `advance`. */
const seedLines = [];
let seedWaiter = null;

before(async () => {
  assert.ok(SEED_BIN, 'SEED_BIN must name the seed_e2e binary (run.sh sets it)');
  mkdirSync(OUT, { recursive: true });
  seedProc = spawn(SEED_BIN, [], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: seedProc.stdout });
  world = await new Promise((resolve, reject) => {
    seedProc.once('exit', (code) => reject(new Error('seed exited with ' + code)));
    lines.once('line', (line) => {
      resolve(JSON.parse(line));
      lines.on('line', (l) => { seedLines.push(l); if (seedWaiter) seedWaiter(); });
    });
  });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    // No --user-data-dir: playwright refuses it in launch() and gives every launch a fresh
    // temporary profile of its own, removed on close.
  });
});

after(async () => {
  if (browser) await browser.close();
  if (seedProc) { seedProc.stdin.end(); seedProc.kill(); }
});

/** Moves the server's clock forward by `seconds` (tokens expire; nothing else waits). */
async function advance(seconds) {
  seedProc.stdin.write(`advance ${seconds}\n`);
  while (!seedLines.some((l) => l.startsWith('advanced '))) await new Promise((r) => { seedWaiter = r; });
  const line = seedLines.splice(seedLines.findIndex((l) => l.startsWith('advanced ')), 1)[0];
  seedWaiter = null;
  return line.slice('advanced '.length);
}

/** A fresh browser context (own sessionStorage) logged in as `username`. */
async function loginAs(username, viewport = { width: 1280, height: 900 }) {
  const context = await browser.newContext({ viewport, locale: 'zh-CN', timezoneId: 'Asia/Shanghai' });
  const page = await context.newPage();
  page.on('pageerror', (e) => { throw e; });
  await page.goto(world.base + '/#/login');
  await page.waitForSelector('#login-form');
  await page.fill('input[name=username]', username);
  await page.fill('input[name=password]', world.password);
  await page.click('#login-form button[type=submit]');
  await page.waitForFunction(() => { const r = document.querySelector('#app').dataset.ready; return r && r !== 'login'; });
  return page;
}
const ready = (page, name) => page.waitForSelector(`#app[data-ready="${name}"]`);
async function go(page, hash, name) {
  await page.evaluate((h) => { location.hash = h; }, hash);
  await ready(page, name);
}
/** GET an API path with the page's own token. */
const apiGet = (page, path) => page.evaluate(async (p) => {
  const r = await fetch(p, { headers: { authorization: 'Bearer ' + sessionStorage.getItem('token') } });
  return { status: r.status, type: r.headers.get('content-type'), body: r.headers.get('content-type')?.includes('json') ? await r.json() : null };
}, path);
const shot = (page, name) => page.screenshot({ path: join(OUT, name + '.png'), fullPage: true });
const fig = async (page, key) => (await page.textContent(`[data-fig="${key}"] .v`)).trim();

async function dashboardMatchesLists(page) {
  await go(page, '#/dashboard', 'dashboard');
  const all = (await apiGet(page, '/api/v1/hazards')).body;
  const overdue = (await apiGet(page, '/api/v1/hazards?overdue=true')).body;
  const open = all.filter((h) => h.state !== 'closed');
  assert.equal(Number(await fig(page, 'total')), all.length);
  assert.equal(Number(await fig(page, 'open')), open.length);
  assert.equal(Number(await fig(page, 'overdue')), overdue.length);
  assert.equal(Number(await fig(page, 'major_open')), open.filter((h) => h.grade === 'major').length);
  assert.equal(Number(await fig(page, 'closed')), all.length - open.length);
  const rate = all.length ? ((all.length - open.length) / all.length) * 100 : 0;
  assert.equal(await fig(page, 'closure_rate'), rate.toFixed(1) + '%');
  return all;
}

test('the login page refuses a wrong password', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(world.base + '/');
  await page.waitForSelector('#login-form');
  await page.fill('input[name=username]', 'supervisor');
  await page.fill('input[name=password]', 'wrong');
  await page.click('#login-form button[type=submit]');
  await page.waitForFunction(() => document.querySelector('#login-error').textContent.length > 0);
  assert.match(await page.textContent('#login-error'), /用户名或密码错误/);
  await shot(page, 'login');
  await context.close();
});

test('every role lands on its own page with its own navigation', async () => {
  for (const [user, landing, navText] of [
    ['supervisor', 'dashboard', '重大隐患督办'], ['manager', 'hazards', '本企业隐患'],
    ['inspector', 'verify', '待复查'], ['agency_admin', 'dashboard', '待复查'],
  ]) {
    const page = await loginAs(user);
    await ready(page, landing);
    assert.match(await page.textContent('#nav'), new RegExp(navText), user);
    await page.context().close();
  }
});

test('the supervisor sees the dashboard, a synced visit with photos, and the notice', async () => {
  const page = await loginAs('supervisor');
  const all = await dashboardMatchesLists(page);
  assert.equal(all.length, 4);
  assert.equal(await fig(page, 'median'), '28');
  assert.equal(await page.locator('#by-month svg rect').count(), 4);
  await shot(page, 'dashboard');

  await go(page, '#/visits', 'visits');
  await page.waitForSelector(`tr[data-visit="${world.visit}"]`);
  await page.click(`tr[data-visit="${world.visit}"] a`);
  await ready(page, 'visit');
  assert.equal(await page.textContent('#visit-place'), '一号冲压车间');
  assert.equal(await page.locator('table.checklist tr').count(), 3);
  // Thumbnails come through the API with the bearer token, shown as blob URLs.
  const thumb = page.locator(`.hz[data-hazard="${world.major}"] img[data-sha="${world.photo}"]`);
  await page.waitForFunction((sha) => { const i = document.querySelector(`img[data-sha="${sha}"]`); return i && i.dataset.loaded === '1' && i.complete && i.naturalWidth > 0; }, world.photo);
  assert.match(await thumb.getAttribute('src'), /^blob:/);
  // The camera original's hash is shown next to the photo.
  const original = page.locator(`.hz[data-hazard="${world.major}"] figure.photo figcaption`);
  assert.match(await original.textContent(), /原图哈希/);
  assert.equal(await original.locator('code.sha').textContent(), world.photo_original);
  await thumb.click();
  await page.waitForFunction(() => { const i = document.querySelector('#viewer img'); return !document.querySelector('#viewer').hidden && i.complete && i.naturalWidth > 0; });
  const [full, small] = await page.evaluate((sha) => [document.querySelector('#viewer img').naturalWidth, document.querySelector(`.hz img[data-sha="${sha}"]`).naturalWidth], world.photo);
  assert.ok(full >= small, `full ${full} >= thumb ${small}`);
  await page.click('#viewer');
  await page.waitForFunction(() => document.querySelector('#signature img')?.naturalWidth > 0);
  assert.match(await page.textContent('#signature'), /王厂长/);
  assert.match(await page.textContent('#visit-changes'), /inspector 测试/);
  await shot(page, 'visit');

  await page.click('#notice-link');
  await ready(page, 'notice');
  const text = await page.textContent('.notice');
  for (const d of [world.enterprise_name, ...world.descriptions]) assert.ok(text.includes(d), d);
  assert.match(text, /应急预案/);
  const pdf = await apiGet(page, `/api/v1/visits/${world.visit}/notice.pdf`);
  assert.equal(pdf.status, 200);
  assert.equal(pdf.type, 'application/pdf');
  await shot(page, 'notice');
  await page.emulateMedia({ media: 'print' });
  assert.equal(await page.isVisible('#pdf'), false, 'buttons are not printed');
  await page.screenshot({ path: join(OUT, 'notice-print.png'), fullPage: true });
  await page.emulateMedia({ media: 'screen' });

  await go(page, `#/file/${world.enterprise}`, 'file');
  assert.equal(await page.locator('.hz').count(), 4);
  await shot(page, 'enterprise-file');
  await page.context().close();
});

test('the language switch is remembered', async () => {
  const page = await loginAs('supervisor');
  await page.click('#lang');
  await page.waitForFunction(() => document.querySelector('#nav').textContent.includes('Dashboard'));
  await page.reload();
  await ready(page, 'dashboard');
  assert.match(await page.textContent('#nav'), /Major hazards/);
  assert.match(await page.textContent('[data-fig="overdue"] .l'), /Overdue/);
  await shot(page, 'dashboard-en');
  await page.click('#lang');
  await page.waitForFunction(() => document.querySelector('#nav').textContent.includes('统计'));
  await page.context().close();
});

test('on a phone-sized screen the dashboard fits the width', async () => {
  const page = await loginAs('supervisor', { width: 390, height: 844 });
  await ready(page, 'dashboard');
  const [scroll, client] = await page.evaluate(() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]);
  assert.ok(scroll <= client + 1, `no sideways scrolling (${scroll} > ${client})`);
  await shot(page, 'dashboard-phone');
  await page.context().close();
});

test('the enterprise submits evidence with a photo, the inspector verifies, the supervisor closes', async () => {
  // Enterprise manager: own hazards, submit with a photo uploaded from the browser.
  const manager = await loginAs('manager');
  await ready(manager, 'hazards');
  assert.equal(await manager.locator('table.hazards tbody tr').count(), 4);
  await manager.click(`tr[data-hazard="${world.major}"] a`);
  await ready(manager, 'hazard');
  await manager.fill('form[data-action=submit] textarea[name=note]', '已更换光电保护装置并试机');
  await manager.setInputFiles('form[data-action=submit] input[type=file]', world.evidence_jpeg);
  await manager.click('form[data-action=submit] button[type=submit]');
  await manager.waitForSelector('#hazard-state [data-state="submitted"]');
  const detail = (await apiGet(manager, `/api/v1/hazards/${world.major}`)).body;
  const submitted = detail.history.find((e) => e.kind === 'rectification_submitted');
  assert.equal(submitted.detail.photos.length, 1);
  const evidence = submitted.detail.photos[0]; // the event lists photo hashes
  assert.match(evidence, /^[0-9a-f]{64}$/);
  await shot(manager, 'manager-submitted');
  await manager.context().close();

  // Inspector: the hazard waits for verification; accept it.
  const inspector = await loginAs('inspector');
  await ready(inspector, 'verify');
  await inspector.waitForSelector(`tr[data-hazard="${world.major}"]`);
  await inspector.click(`tr[data-hazard="${world.major}"] a`);
  await ready(inspector, 'hazard');
  await inspector.fill('form[data-action=accept] textarea', '复查合格');
  await inspector.click('form[data-action=accept] button[type=submit]');
  await inspector.waitForSelector('#hazard-state [data-state="accepted"]');
  assert.equal(await inspector.locator('form[data-action=close]').count(), 0, 'an inspector is not offered closing a major hazard');
  await inspector.context().close();

  // Supervisor: the evidence photo is visible; close the major hazard; the dashboard follows.
  const sup = await loginAs('supervisor');
  await go(sup, '#/major', 'major');
  await sup.click(`tr[data-hazard="${world.major}"] a`);
  await ready(sup, 'hazard');
  const ev = await apiGet(sup, `/api/v1/photos/${evidence}/thumb`);
  assert.equal(ev.status, 200);
  await sup.waitForFunction((sha) => document.querySelector(`#hazard-photos img[data-sha="${sha}"]`)?.naturalWidth > 0, evidence);
  await sup.fill('form[data-action=close] textarea', '验收合格，同意销号');
  await sup.click('form[data-action=close] button[type=submit]');
  await sup.waitForSelector('#hazard-state [data-state="closed"]');
  assert.match(await sup.textContent('#hazard-history'), /验收销号/);
  assert.match(await sup.textContent('#hazard-changes'), /supervisor 测试/);
  await shot(sup, 'major-closed');
  await dashboardMatchesLists(sup);
  assert.equal(await fig(sup, 'major_open'), '0');
  assert.equal(await fig(sup, 'closed'), '2');
  await sup.context().close();
});

// The action forms a page offers are exactly the actions the server's hazard detail allows the
// signed-in user (sync_core::actions); that the server accepts each allowed action and refuses
// each other one is proven by tests/tests/rules.rs against the same detail.
const FORM_OF = {
  notify: 'notified', sign_for: 'signed_for', submit_rectification: 'submit', request_extension: 'extension',
  accept: 'accept', reject: 'reject', grant_extension: 'grant', refuse_extension: 'refuse',
  report_to_regulator: 'report', put_under_supervision: 'supervise', lift_supervision: 'lift',
  close: 'close', reopen: 'reopen', upgrade: 'upgrade', downgrade: 'downgrade',
};
test('every page offers exactly the actions the server allows, for every role and hazard', async () => {
  for (const who of ['manager', 'inspector', 'supervisor', 'agency_admin']) {
    const page = await loginAs(who);
    const list = (await apiGet(page, '/api/v1/hazards')).body;
    assert.ok(list.length > 0, `${who} sees hazards`);
    for (const hz of list) {
      await go(page, '#/hazard/' + hz.id, 'hazard');
      const offered = await page.evaluate(() => [...document.querySelectorAll('form[data-action]')].map((f) => f.dataset.action).sort());
      const detail = (await apiGet(page, `/api/v1/hazards/${hz.id}`)).body;
      const allowed = detail.actions.filter((a) => a.allowed && FORM_OF[a.action]).map((a) => FORM_OF[a.action]).sort();
      assert.deepEqual(offered, allowed, `${who} on a ${hz.grade} hazard in state ${hz.state}`);
    }
    await page.context().close();
  }
});

test('a supervisor of another township sees none of it', async () => {
  const page = await loginAs('other_supervisor');
  await ready(page, 'dashboard');
  const all = await dashboardMatchesLists(page);
  assert.deepEqual(all.map((h) => h.id), [world.other_hazard]);
  const html = await page.content();
  assert.ok(!html.includes(world.enterprise_name));
  await go(page, '#/hazards', 'hazards');
  assert.equal(await page.locator(`tr[data-hazard="${world.major}"]`).count(), 0);
  await go(page, `#/visit/${world.visit}`, 'error');
  await go(page, `#/notice/${world.visit}`, 'error');
  assert.equal((await apiGet(page, `/api/v1/photos/${world.photo}/thumb`)).status, 404);
  assert.equal((await apiGet(page, `/api/v1/visits/${world.visit}/notice.pdf`)).status, 404);
  await page.context().close();
});

test('a session that is no longer valid goes back to the login page', async () => {
  const page = await loginAs('supervisor');
  await page.evaluate(() => sessionStorage.setItem('token', 'bogus'));
  await page.evaluate(() => { location.hash = '#/visits'; });
  await page.waitForSelector('#login-form');
  await page.context().close();
});

test('the visits page filters by date on the server', async () => {
  const page = await loginAs('supervisor');
  const requests = [];
  page.on('request', (r) => { if (r.url().includes('/api/v1/visits?')) requests.push(new URL(r.url()).search); });
  await go(page, '#/visits?from=2026-02-10&to=2026-02-10', 'visits');
  assert.equal(await page.locator(`tr[data-visit="${world.visit}"]`).count(), 1);
  assert.ok(requests.includes('?from=2026-02-10&to=2026-02-10'), requests.join(' '));
  await go(page, '#/visits?from=2026-02-11', 'visits');
  assert.equal(await page.locator('table.visits tbody tr').count(), 0);
  assert.equal(await page.inputValue('#visit-filters input[name=from]'), '2026-02-11');
  await page.fill('#visit-filters input[name=to]', '2026-02-01');
  await page.click('#visit-filters button[type=submit]');
  await ready(page, 'visits');
  await page.waitForFunction(() => !document.querySelector('#msg').hidden);
  assert.match(await page.textContent('#msg'), /晚于.*after/);
  await page.context().close();
});

test('a proactive refresh renews the access token before it expires', async () => {
  const page = await loginAs('supervisor');
  await ready(page, 'dashboard');
  const unauthorised = [];
  page.on('response', (r) => { if (r.status() === 401) unauthorised.push(r.url()); });
  const before = await page.evaluate(() => sessionStorage.getItem('token'));
  // By this tab's clock the token is about to expire (the server's clock has not moved).
  await page.evaluate(() => sessionStorage.setItem('expires_at', String(Date.now() + 1000)));
  await go(page, '#/visits', 'visits');
  const after = await page.evaluate(() => sessionStorage.getItem('token'));
  assert.notEqual(after, before, 'the token was renewed');
  assert.deepEqual(unauthorised, []);
  await page.context().close();
});

test('an expired access token is refreshed and the page keeps working', async () => {
  const page = await loginAs('supervisor');
  await ready(page, 'dashboard');
  const [token, refresh] = await page.evaluate(() => [sessionStorage.getItem('token'), sessionStorage.getItem('refresh')]);
  assert.ok(refresh, 'the refresh token is kept');
  await advance(16 * 60); // access tokens live 15 minutes
  assert.equal((await apiGet(page, '/api/v1/me')).status, 401, 'the access token has expired on the server');
  // Several requests at once (the visit page loads its record and history together): one refresh.
  await go(page, '#/visits', 'visits');
  await page.click(`tr[data-visit="${world.visit}"] a`);
  await ready(page, 'visit');
  const [token2, refresh2] = await page.evaluate(() => [sessionStorage.getItem('token'), sessionStorage.getItem('refresh')]);
  assert.notEqual(token2, token);
  assert.notEqual(refresh2, refresh);
  assert.equal((await apiGet(page, '/api/v1/me')).status, 200);
  await go(page, '#/hazards', 'hazards');
  assert.ok(await page.locator('table.hazards tbody tr').count() > 0);
  await page.context().close();
});

test('when the refresh fails the page goes back to the login page', async () => {
  const page = await loginAs('supervisor');
  await ready(page, 'dashboard');
  await page.evaluate(() => sessionStorage.setItem('refresh', 'bogus'));
  await advance(16 * 60);
  await page.evaluate(() => { location.hash = '#/visits'; });
  await page.waitForSelector('#login-form');
  assert.equal(await page.evaluate(() => sessionStorage.getItem('token')), null);
  await page.context().close();
});

test('the hazard ledger downloads as Excel and the inbox lists what concerns the township', async () => {
  const page = await loginAs('supervisor');
  await go(page, '#/hazards', 'hazards');
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.click('button[data-export="xlsx"]'),
  ]);
  assert.match(download.suggestedFilename(), /^隐患台账-\d{4}-\d{2}-\d{2}\.xlsx$/);
  const path = await download.path();
  const { readFileSync } = await import('node:fs');
  const bytes = readFileSync(path);
  assert.equal(bytes.subarray(0, 2).toString(), 'PK', 'an xlsx is a zip');
  await go(page, '#/dashboard', 'dashboard');
  const [stats] = await Promise.all([page.waitForEvent('download'), page.click('button[data-export="stats"]')]);
  assert.match(stats.suggestedFilename(), /^月度统计-\d{4}-\d{2}-\d{2}\.xlsx$/);
  // A change elsewhere refreshes the dashboard by itself (the change stream).
  await page.evaluate(() => { document.querySelector('#page-dashboard').dataset.stale = '1'; });
  // The enterprise submits evidence from elsewhere (its own session, not this page's).
  const acted = await page.evaluate(async ([id, password]) => {
    const login = await fetch('/api/v1/auth/login', { method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'manager', password }) }).then((r) => r.json());
    const r = await fetch('/api/v1/hazards/' + id + '/events', { method: 'POST',
      headers: { authorization: 'Bearer ' + login.access_token, 'content-type': 'application/json' },
      body: JSON.stringify({ kind: 'rectification_submitted', note: '已整改（浏览器测试）', photos: [] }) });
    return r.status;
  }, [world.overdue, world.password]);
  assert.equal(acted, 200);
  await page.waitForFunction(() => { const d = document.querySelector('#page-dashboard'); return d && !d.dataset.stale; }, null, { timeout: 15000 });
  await go(page, '#/inbox', 'inbox');
  const kinds = await page.$$eval('#inbox tr[data-kind]', (rows) => rows.map((r) => r.dataset.kind));
  assert.ok(kinds.includes('hazard.notified'), kinds.join());
  assert.ok(!(await page.textContent('#inbox')).includes('粉尘涉爆除尘系统未设置泄爆装置'), 'another township');
  await shot(page, 'inbox');
  await page.context().close();
});

test('an agency admin disables and enables a colleague on the accounts page', async () => {
  const page = await loginAs('agency_admin');
  await go(page, '#/users', 'users');
  const names = await page.$$eval('#users tr[data-user]', (rows) => rows.map((r) => r.dataset.user));
  assert.ok(names.includes('inspector3') && !names.includes('other_inspector'), names.join());
  await page.click('tr[data-user="inspector3"] button[data-act="disable"]');
  await page.waitForSelector('tr[data-user="inspector3"] button[data-act="enable"]');
  const login = await page.evaluate(async (password) => (await fetch('/api/v1/auth/login', { method: 'POST',
    headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'inspector3', password }) })).json(), world.password);
  assert.equal(login.error, 'account_disabled');
  await page.click('tr[data-user="inspector3"] button[data-act="enable"]');
  await page.waitForSelector('tr[data-user="inspector3"] button[data-act="disable"]');
  await shot(page, 'users');
  await page.context().close();
});

/** A unified social credit code: `first17` and its check digit (GB 32100). */
function uscc(first17) {
  const alphabet = '0123456789ABCDEFGHJKLMNPQRTUWXY';
  let sum = 0;
  for (let i = 0; i < 17; i++) sum += alphabet.indexOf(first17[i]) * (3 ** i % 31);
  return first17 + alphabet[(31 - (sum % 31)) % 31];
}

test('a supervisor imports the township’s enterprises from a file, all rows or none', async () => {
  const page = await loginAs('supervisor');
  await go(page, '#/import', 'import');
  const kinds = await page.$$eval('#import-kind option', (o) => o.map((x) => x.value));
  assert.deepEqual(kinds, ['enterprises', 'users']);
  const head = '企业名称,统一社会信用代码,地址,乡镇,行业\n';
  const own = `浏览器导入五金厂,${uscc('91330100MA2000301')},城东路 18 号,城东街道,机械\n`;
  const foreign = `河西导入纸箱厂,${uscc('91330100MA2000302')},河西路 3 号,河西镇,包装\n`;
  const upload = async (csv) => {
    await page.setInputFiles('#import-file', { name: '企业.csv', mimeType: 'text/csv', buffer: Buffer.from(csv) });
    await page.click('#import-form button[type=submit]');
  };
  // Another township's row: nothing goes in, the row is named.
  await upload(head + own + foreign);
  await page.waitForSelector('#import-errors');
  const problem = await page.textContent('#import-errors tbody');
  assert.match(problem, /第 3 行 D 列「乡镇」/);
  assert.match(await page.textContent('#msg'), /未导入任何企业/);
  let list = await apiGet(page, '/api/v1/enterprises');
  assert.ok(!list.body.some((e) => e.name === '浏览器导入五金厂'), 'nothing of the refused file');
  // Its own rows only: stored.
  await upload(head + own);
  await page.waitForFunction(() => /已导入 1 家企业/.test(document.querySelector('#msg').textContent));
  assert.equal(await page.$('#import-errors'), null);
  list = await apiGet(page, '/api/v1/enterprises');
  assert.ok(list.body.some((e) => e.name === '浏览器导入五金厂'));
  await shot(page, 'import');
  await page.context().close();
});
