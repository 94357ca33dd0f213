// Web pages of the inspection platform: one page, hash routes, no build step.
// Every write goes through POST /api/v1/hazards/{id}/events (the same policy as the phones).
'use strict';

// ---------- i18n ----------
const DICT = {
  'app.title': ['安全生产隐患整改平台', 'Hazard rectification platform'],
  'logout': ['退出', 'Log out'], 'close': ['关闭', 'Close'],
  'login': ['登录', 'Log in'], 'username': ['用户名', 'Username'], 'password': ['密码', 'Password'],
  'login.failed': ['用户名或密码错误', 'Wrong username or password'],
  'nav.dashboard': ['统计', 'Dashboard'], 'nav.hazards': ['隐患', 'Hazards'], 'nav.visits': ['检查记录', 'Visits'],
  'nav.major': ['重大隐患督办', 'Major hazards'], 'nav.enterprises': ['企业', 'Enterprises'],
  'nav.verify': ['待复查', 'To verify'], 'nav.mine': ['本企业隐患', 'Our hazards'], 'nav.inbox': ['提醒', 'Inbox'], 'nav.users': ['账号', 'Accounts'], 'nav.import': ['导入', 'Import'],
  'import.kind': ['导入内容', 'What to import'], 'import.file': ['文件（CSV 或 Excel）', 'File (CSV or Excel)'], 'import.go': ['导入', 'Import'],
  'import.enterprises': ['本辖区企业', 'Enterprises of the township'], 'import.users': ['本单位用户', 'Users of the organisation'],
  'import.contracts': ['本机构服务合同', 'Contracts of the agency'], 'import.row': ['行', 'Row'], 'import.problem': ['问题', 'Problem'],
  'import.hint': ['第 1 行为列名；全部行无误才会导入，有误时一行也不导入。', 'Row 1 holds the column names; the file goes in only when every row is right, else nothing does.'],
  'user.disable': ['停用', 'Disable'], 'user.enable': ['启用', 'Enable'], 'user.password': ['重置密码', 'Reset password'],
  'user.new_password': ['新密码（至少 8 个字符）', 'New password (8 characters or more)'], 'user.disabled': ['已停用', 'Disabled'],
  'role.inspector': ['检查员', 'Inspector'], 'role.enterprise_manager': ['企业负责人', 'Enterprise manager'],
  'role.supervisor': ['监管人员', 'Supervisor'], 'role.agency_admin': ['机构管理员', 'Agency admin'],
  'fig.total': ['隐患总数', 'Hazards'], 'fig.open': ['未销号', 'Open'], 'fig.overdue': ['已逾期', 'Overdue'],
  'fig.major_open': ['重大隐患（未销号）', 'Major (open)'], 'fig.closed': ['已销号', 'Closed'],
  'fig.closure_rate': ['销号率', 'Closure rate'], 'fig.median': ['销号用时中位数（天）', 'Median days to close'],
  'by.township': ['按乡镇（街道）', 'By township'], 'by.park': ['按园区', 'By park'], 'by.agency': ['按服务机构', 'By agency'],
  'by.enterprise': ['按企业', 'By enterprise'], 'by.month': ['按月趋势', 'Trend by month'], 'by.state': ['按状态', 'By state'],
  'created': ['发现', 'Found'], 'no.park': ['（园区外）', '(outside parks)'],
  'state.open': ['待通知', 'Open'], 'state.notified': ['已通知', 'Notified'], 'state.in_progress': ['整改中', 'In progress'],
  'state.submitted': ['待复查', 'Submitted'], 'state.accepted': ['复查通过', 'Accepted'], 'state.closed': ['已销号', 'Closed'],
  'grade.major': ['重大', 'Major'], 'grade.general': ['一般', 'General'], 'overdue': ['逾期', 'Overdue'],
  'all': ['全部', 'All'], 'filter': ['筛选', 'Filter'], 'grade': ['等级', 'Grade'], 'state': ['状态', 'State'],
  'enterprise': ['企业', 'Enterprise'], 'location': ['部位', 'Location'], 'description': ['隐患描述', 'Description'],
  'criterion': ['判定依据', 'Basis'], 'measure': ['整改措施', 'Measure'], 'deadline': ['整改期限', 'Deadline'],
  'responsible': ['责任人', 'Responsible'], 'funds': ['整改资金（元）', 'Funds (yuan)'], 'plan': ['应急预案', 'Emergency plan'],
  'photos': ['照片', 'Photos'], 'original.sha': ['原图哈希', 'Original SHA-256'], 'history': ['整改记录', 'History'], 'changes': ['修改记录', 'Change history'],
  'when': ['时间', 'When'], 'who': ['人员', 'Who'], 'device': ['设备', 'Device'], 'fields': ['修改内容', 'Changed'],
  'kind': ['事项', 'Action'], 'detail': ['详情', 'Detail'], 'ignored': ['未生效', 'No effect'],
  'place': ['检查地点', 'Place'], 'started': ['检查时间', 'Started'], 'inspectors': ['检查人员', 'Inspectors'],
  'checklist': ['检查表', 'Checklist'], 'result': ['结果', 'Result'], 'note': ['说明', 'Note'],
  'res.pass': ['符合', 'Pass'], 'res.fail': ['不符合', 'Fail'], 'res.not_applicable': ['不适用', 'N/A'], 'res.unchecked': ['未检查', 'Unchecked'],
  'signature': ['企业负责人签名', 'Signature'], 'unsigned': ['未签名', 'Not signed'],
  'hazards': ['隐患', 'Hazards'], 'visit': ['检查', 'Visit'], 'notice': ['整改通知书', 'Rectification notice'],
  'pdf': ['下载 PDF', 'Download PDF'], 'print': ['打印', 'Print'], 'file': ['一企一档', 'Enterprise file'],
  'open.detail': ['查看', 'Open'], 'none': ['暂无数据', 'Nothing here'], 'from': ['从', 'From'], 'to': ['至', 'To'],
  'act.signed_for': ['签收通知书', 'Sign for the notice'], 'signer': ['签收人', 'Signer'],
  'act.submit': ['提交整改（附照片）', 'Submit rectification with photos'],
  'act.extension': ['申请延期', 'Ask for more time'], 'until': ['延期至', 'Until'], 'reason': ['理由', 'Reason'],
  'act.verify': ['复查验收', 'Verify'], 'accept': ['通过', 'Accept'], 'reject': ['不通过', 'Reject'],
  'act.notified': ['下发整改通知', 'Issue the notice'], 'act.grant': ['批准延期', 'Grant extension'],
  'act.refuse': ['不批准延期', 'Refuse extension'], 'request': ['延期申请', 'Request'],
  'act.report': ['报告监管部门', 'Report to regulator'], 'report.to': ['报告对象', 'Reported to'],
  'act.supervise': ['挂牌督办', 'Put under supervision'], 'act.lift': ['解除督办', 'Lift supervision'],
  'act.upgrade': ['升为重大事故隐患', 'Upgrade to major'], 'act.downgrade': ['降为一般隐患', 'Downgrade to general'],
  'conflict': ['该字段有两个同时填写的值，请选择一个', 'Two values were set at once: pick one'], 'pick': ['采用此值', 'Use this value'],
  'signed.signed': ['已签字', 'Signed'], 'signed.changed_since_signing': ['签字后有修改', 'Changed since signing'], 'signed.not_signed': ['未签字', 'Not signed'],
  'found_at': ['发现时间', 'Found'], 'report.claimed': ['上报时间（设备）', 'Reported (device)'], 'report.received': ['收到上报（服务器）', 'Report received (server)'],
  'report.status': ['上报情况', 'Report'], 'report.on_time': ['按时上报', 'On time'], 'report.late': ['逾期上报', 'Late'], 'report.missing': ['未上报（已超时）', 'Missing'],
  'report.pending': ['待上报', 'Due'], 'report.not_major': ['已降级', 'Downgraded'], 'report.received_late': ['服务器收到时已超时', 'Received after the window'],
  'act.close': ['验收销号', 'Close'], 'act.reopen': ['重新打开', 'Reopen'], 'submit': ['提交', 'Submit'],
  'done': ['已提交', 'Done'], 'uploading': ['正在上传照片…', 'Uploading photos…'],
  'reported': ['已报告', 'Reported'], 'supervised': ['督办中', 'Under supervision'],
  'address': ['地址', 'Address'], 'uscc': ['统一社会信用代码', 'Credit code'], 'industry': ['行业', 'Industry'],
  'visits': ['检查记录', 'Visits'], 'checked': ['检查项', 'Checked'], 'failed': ['不符合项', 'Failed'],
  'notice.intro': ['经检查，你单位存在下列安全生产问题和事故隐患，请按要求落实整改措施，于期限内完成整改。',
    'The inspection found the following problems and hazards; rectify each by its deadline.'],
  'five': ['重大事故隐患须落实整改责任、措施、资金、时限和应急预案（五落实）。',
    'Major hazards: responsibility, measures, funds, deadline and emergency plan must all be in place.'],
  'error': ['出错了', 'Something went wrong'], 'loading': ['加载中…', 'Loading…'],
  'export.xlsx': ['导出台账（Excel）', 'Export ledger (Excel)'], 'export.stats': ['导出月度统计（Excel）', 'Export monthly statistics (Excel)'], 'export.zip': ['下载档案（含照片）', 'Download the file with photos'], 'export.csv': ['导出台账（CSV）', 'Export ledger (CSV)'],
  'agency': ['服务机构', 'Agency'], 'township': ['乡镇（街道）', 'Township'], 'closed_at': ['销号时间', 'Closed'],
};
let lang = localStorage.getItem('lang') === 'en' ? 'en' : 'zh';
function t(key) { const e = DICT[key]; return e ? e[lang === 'en' ? 1 : 0] : key; }

// ---------- DOM helpers ----------
function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const kid of kids.flat(Infinity)) {
    if (kid === null || kid === undefined || kid === false) continue;
    el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return el;
}
const $ = (sel) => document.querySelector(sel);
/** Appends children like h() does: arrays flattened, null/false skipped. */
function add(parent, ...kids) {
  for (const k of kids.flat(Infinity)) if (k !== null && k !== undefined && k !== false) parent.append(k);
}
function fmtTime(ms) {
  if (ms === null || ms === undefined) return '—';
  return new Date(ms).toLocaleString(lang === 'en' ? 'en-GB' : 'zh-CN', { timeZone: 'Asia/Shanghai', hour12: false });
}
function todayChina() { return new Date().toLocaleDateString('sv-SE', { timeZone: 'Asia/Shanghai' }); }
function message(text, isError) {
  const m = $('#msg');
  m.textContent = text; m.hidden = !text; m.className = isError ? 'error' : '';
}

// ---------- session and API ----------
// Access tokens live minutes (the server says how many seconds in access_expires_in); the refresh
// token is spent on use and replaced. Refresh before expiry by this tab's own clock, and again when
// the server answers 401 token_expired (clocks differ); one refresh at a time, because presenting a
// spent refresh token twice ends the whole session.
const REFRESH_EARLY_MS = 60 * 1000;
const session = {
  get token() { return sessionStorage.getItem('token'); },
  get refreshToken() { return sessionStorage.getItem('refresh'); },
  get expiresAt() { return Number(sessionStorage.getItem('expires_at')) || 0; },
  get me() { try { return JSON.parse(sessionStorage.getItem('me')); } catch { return null; } },
  setTokens(r) {
    sessionStorage.setItem('token', r.access_token);
    if (r.refresh_token) sessionStorage.setItem('refresh', r.refresh_token);
    if (r.access_expires_in) sessionStorage.setItem('expires_at', String(Date.now() + r.access_expires_in * 1000));
  },
  setMe(me) { sessionStorage.setItem('me', JSON.stringify(me)); },
  clear() { for (const k of ['token', 'refresh', 'expires_at', 'me']) sessionStorage.removeItem(k); },
};
class ApiError extends Error { constructor(status, body) { super((body && body.message) || String(status)); this.status = status; this.body = body; } }
let refreshing = null;
/** Spends the refresh token for a new pair; one at a time. Resolves true when it worked. */
function refreshSession() {
  if (!refreshing) {
    refreshing = (async () => {
      const rt = session.refreshToken;
      if (!rt) return false;
      try {
        const r = await fetch('/api/v1/auth/refresh', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ refresh_token: rt }) });
        if (!r.ok) return false;
        session.setTokens(await r.json());
        return true;
      } catch { return false; }
    })().finally(() => { refreshing = null; });
  }
  return refreshing;
}
function toLogin() { session.clear(); location.hash = '#/login'; return new ApiError(401, null); }
const NO_AUTH = new Set(['/api/v1/auth/login', '/api/v1/auth/refresh']);
async function api(path, opts = {}) {
  let body = opts.body;
  const baseHeaders = Object.assign({}, opts.headers || {});
  if (opts.json !== undefined) { baseHeaders['content-type'] = 'application/json'; body = JSON.stringify(opts.json); }
  const send = (token) => {
    const headers = Object.assign({}, baseHeaders);
    if (token && !NO_AUTH.has(path)) headers.authorization = 'Bearer ' + token;
    return fetch(path, { method: opts.method || 'GET', headers, body, signal: opts.signal });
  };
  if (!NO_AUTH.has(path) && session.token && session.expiresAt && Date.now() > session.expiresAt - REFRESH_EARLY_MS) {
    await refreshSession(); // on failure the request below meets the 401 path
  }
  let used = session.token;
  let r = await send(used);
  if (r.status === 401 && !NO_AUTH.has(path)) {
    const err = await r.clone().json().catch(() => null);
    // Another request may have refreshed meanwhile; otherwise refresh once, then retry once.
    const renewed = session.token && session.token !== used
      ? true
      : err && err.error === 'token_expired' && await refreshSession();
    if (!renewed) throw toLogin();
    used = session.token;
    r = await send(used);
    if (r.status === 401) throw toLogin();
  }
  if (opts.raw) { if (!r.ok) throw new ApiError(r.status, await r.json().catch(() => null)); return r; }
  const data = await r.json().catch(() => null);
  if (!r.ok) throw new ApiError(r.status, data);
  return data;
}
const blobCache = new Map();
async function photoUrl(sha, thumb) {
  const key = sha + (thumb ? '/thumb' : '');
  if (!blobCache.has(key)) {
    blobCache.set(key, api('/api/v1/photos/' + key, { raw: true }).then((r) => r.blob()).then((b) => URL.createObjectURL(b)));
  }
  return blobCache.get(key);
}
function photoStrip(photos) {
  if (!photos || !photos.length) return h('p', { class: 'muted' }, t('none'));
  return h('div', { class: 'photos' }, photos.map((p) => {
    const img = h('img', { alt: p.sha256.slice(0, 12), 'data-sha': p.sha256, title: fmtTime(p.captured_at) });
    photoUrl(p.sha256, true).then((u) => { img.src = u; img.dataset.loaded = '1'; }).catch(() => { img.alt = '×'; img.dataset.loaded = 'error'; });
    img.addEventListener('click', async () => {
      const v = $('#viewer'); const big = v.querySelector('img');
      big.removeAttribute('src'); v.hidden = false;
      try { big.src = await photoUrl(p.sha256, false); big.dataset.sha = p.sha256; } catch (e) { message(e.message, true); }
    });
    // Phones upload a downscaled copy and keep the camera original as evidence: its hash is shown
    // whole (selectable, ellipsised on screen) so an original can be checked against the record.
    if (!p.original_sha256) return img;
    return h('figure', { class: 'photo' }, img, h('figcaption', { title: t('original.sha') + ' ' + p.original_sha256 },
      h('span', { class: 'muted' }, t('original.sha')), ' ', h('code', { class: 'sha', 'data-original': p.original_sha256 }, p.original_sha256)));
  }));
}

// ---------- small views ----------
const stateBadge = (s) => h('span', { class: 'badge ' + s, 'data-state': s }, t('state.' + s));
const gradeBadge = (g) => h('span', { class: 'badge ' + (g === 'major' ? 'major' : '') }, t('grade.' + g));
function hazardTable(rows) {
  if (!rows.length) return h('p', { class: 'muted' }, t('none'));
  return h('div', { class: 'table-wrap' }, h('table', { class: 'hazards' },
    h('thead', {}, h('tr', {}, [t('enterprise'), t('description'), t('location'), t('grade'), t('state'), t('deadline'), ''].map((x, i) => h('th', { class: i === 2 ? 'hide-sm' : '' }, x)))),
    h('tbody', {}, rows.map((r) => h('tr', { 'data-hazard': r.id },
      h('td', {}, r.enterprise_name), h('td', {}, r.description),
      h('td', { class: 'hide-sm' }, r.location), h('td', {}, gradeBadge(r.grade)),
      h('td', {}, stateBadge(r.state), r.overdue ? [' ', h('span', { class: 'badge overdue' }, t('overdue'))] : null,
        r.under_supervision ? [' ', h('span', { class: 'badge major' }, t('supervised'))] : null),
      h('td', {}, r.deadline || '—'),
      h('td', {}, h('a', { href: '#/hazard/' + r.id }, t('open.detail'))))))));
}
function eventsTable(history) {
  if (!history.length) return h('p', { class: 'muted' }, t('none'));
  return h('div', { class: 'table-wrap' }, h('table', { class: 'events' },
    h('thead', {}, h('tr', {}, [t('when'), t('kind'), t('who'), t('detail')].map((x) => h('th', {}, x)))),
    h('tbody', {}, history.map((e) => h('tr', { 'data-kind': e.kind },
      h('td', {}, fmtTime(e.at)), h('td', {}, actionName(e.kind), e.ignored ? [' ', h('span', { class: 'badge overdue', title: e.ignored }, t('ignored'))] : null),
      h('td', {}, t('role.' + e.role)), h('td', {}, detailText(e.detail)))))));
}
function actionName(kind) {
  const map = { notified: 'act.notified', signed_for: 'act.signed_for', rectification_submitted: 'act.submit', extension_requested: 'act.extension',
    extension_granted: 'act.grant', extension_refused: 'act.refuse', verified: 'act.verify', reported_to_regulator: 'act.report',
    supervision_put: 'act.supervise', supervision_lifted: 'act.lift', closed: 'act.close', reopened: 'act.reopen' };
  return map[kind] ? t(map[kind]) : kind;
}
function detailText(d) {
  if (!d || typeof d !== 'object') return '';
  return Object.entries(d).filter(([k]) => k !== 'kind').map(([k, v]) =>
    k === 'photos' && Array.isArray(v) ? t('photos') + ': ' + v.length : k === 'accepted' ? (v ? t('accept') : t('reject')) : (typeof v === 'object' ? '' : String(v))).filter(Boolean).join('；');
}
function changesTable(rows) {
  if (!rows.length) return h('p', { class: 'muted' }, t('none'));
  return h('div', { class: 'table-wrap' }, h('table', { class: 'changes' },
    h('thead', {}, h('tr', {}, [t('when'), t('who'), t('device'), t('fields')].map((x) => h('th', {}, x)))),
    h('tbody', {}, rows.map((c) => h('tr', {},
      h('td', {}, fmtTime(c.at)),
      h('td', {}, c.user_name || '?', c.role ? ' (' + t('role.' + c.role) + ')' : ''),
      h('td', {}, c.device_name ? c.device_name + ' · ' + c.platform : c.actor.slice(0, 8)),
      h('td', {}, (c.changes || []).map((f) => h('div', { class: 'field-change', 'data-field': f.field },
        h('strong', {}, pickLang(f.label)), '：',
        f.old === null || f.old === undefined ? '' : [h('span', { class: 'old' }, f.old), ' → '],
        h('span', { class: 'new' }, f.new === null || f.new === undefined ? '—' : f.new)))))))));
}
/** The part of a "中文 / English" label for the page's language. */
function pickLang(label) {
  const parts = String(label).split(' / ');
  return lang === 'en' && parts.length > 1 ? parts.slice(1).join(' / ') : parts[0];
}

// ---------- charts (inline SVG) ----------
const SVGNS = 'http://www.w3.org/2000/svg';
function s(tag, attrs, ...kids) {
  const el = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
  for (const k of kids) el.append(k instanceof Node ? k : document.createTextNode(String(k)));
  return el;
}
const SERIES = [['total', '#8aa4c0'], ['open', '#0b5cad'], ['overdue', '#b3261e'], ['major_open', '#8e1b7a']];
function barChart(groups, nameOf) {
  if (!groups.length) return h('p', { class: 'muted' }, t('none'));
  const rowH = 16 * SERIES.length + 10, labelW = 130, w = 520, max = Math.max(1, ...groups.map((g) => g.total));
  const svg = s('svg', { class: 'chart', viewBox: `0 0 ${w} ${groups.length * rowH + 10}`, role: 'img' });
  groups.forEach((g, i) => {
    const y0 = i * rowH + 5;
    const name = nameOf(g);
    svg.append(s('text', { x: 0, y: y0 + rowH / 2, 'dominant-baseline': 'middle' }, name.length > 10 ? name.slice(0, 10) + '…' : name));
    SERIES.forEach(([k, c], j) => {
      const bw = ((w - labelW - 40) * g[k]) / max;
      svg.append(s('rect', { x: labelW, y: y0 + j * 16, width: Math.max(bw, 0.5), height: 13, fill: c }, s('title', {}, `${name} ${t('fig.' + k)}: ${g[k]}`)));
      svg.append(s('text', { x: labelW + bw + 4, y: y0 + j * 16 + 10 }, g[k]));
    });
  });
  return svg;
}
function legend() {
  return h('div', { class: 'legend' }, SERIES.map(([k, c]) => h('span', {}, h('i', { style: `background:${c}` }), t('fig.' + k))));
}
function monthChart(months) {
  if (!months.length) return h('p', { class: 'muted' }, t('none'));
  const w = 520, hgt = 200, pad = 30, max = Math.max(1, ...months.map((m) => Math.max(m.created, m.closed)));
  const step = (w - pad * 2) / months.length, bw = Math.min(24, step / 2.5);
  const svg = s('svg', { class: 'chart', viewBox: `0 0 ${w} ${hgt + 30}`, role: 'img' });
  svg.append(s('line', { x1: pad, y1: hgt, x2: w - pad, y2: hgt, stroke: '#999' }));
  months.forEach((m, i) => {
    const x = pad + i * step + step / 2;
    [['created', '#0b5cad', -bw], ['closed', '#1e7d3a', 0]].forEach(([k, c, dx]) => {
      const bh = ((hgt - 20) * m[k]) / max;
      svg.append(s('rect', { x: x + dx, y: hgt - bh, width: bw, height: bh, fill: c }, s('title', {}, `${m.month} ${k === 'created' ? t('created') : t('fig.closed')}: ${m[k]}`)));
      svg.append(s('text', { x: x + dx + bw / 2, y: hgt - bh - 3, 'text-anchor': 'middle' }, m[k]));
    });
    svg.append(s('text', { x, y: hgt + 16, 'text-anchor': 'middle' }, m.month));
  });
  return h('div', {}, svg, h('div', { class: 'legend' }, h('span', {}, h('i', { style: 'background:#0b5cad' }), t('created')), h('span', {}, h('i', { style: 'background:#1e7d3a' }), t('fig.closed'))));
}

// ---------- pages ----------
const pages = {};

pages.login = async (app) => {
  session.clear();
  const err = h('p', { class: 'muted', id: 'login-error' });
  const form = h('form', { id: 'login-form' },
    h('label', {}, t('username'), h('input', { name: 'username', autocomplete: 'username', required: true })),
    h('label', {}, t('password'), h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true })),
    h('button', { class: 'primary', type: 'submit' }, t('login')), err);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const fd = new FormData(form);
    try {
      const r = await api('/api/v1/auth/login', { method: 'POST', json: { username: fd.get('username'), password: fd.get('password') } });
      session.setTokens(r); session.setMe(r.user);
      session.setMe(await api('/api/v1/me'));
      location.hash = '#/';
    } catch (e) { err.textContent = e.status === 401 ? t('login.failed') : e.message; }
  });
  add(app, h('div', { class: 'login card' }, h('h1', {}, t('app.title')), form));
};

function home(role) {
  return { supervisor: '#/dashboard', enterprise_manager: '#/hazards', inspector: '#/verify', agency_admin: '#/dashboard' }[role] || '#/hazards';
}
function navFor(role) {
  const items = {
    supervisor: [['dashboard', 'nav.dashboard'], ['major', 'nav.major'], ['hazards', 'nav.hazards'], ['visits', 'nav.visits'], ['enterprises', 'nav.enterprises'], ['inbox', 'nav.inbox'], ['users', 'nav.users'], ['import', 'nav.import']],
    enterprise_manager: [['hazards', 'nav.mine'], ['visits', 'nav.visits'], ['enterprises', 'file'], ['inbox', 'nav.inbox']],
    inspector: [['verify', 'nav.verify'], ['hazards', 'nav.hazards'], ['visits', 'nav.visits'], ['enterprises', 'nav.enterprises'], ['inbox', 'nav.inbox']],
    agency_admin: [['dashboard', 'nav.dashboard'], ['verify', 'nav.verify'], ['hazards', 'nav.hazards'], ['visits', 'nav.visits'], ['enterprises', 'nav.enterprises'], ['inbox', 'nav.inbox'], ['users', 'nav.users'], ['import', 'nav.import']],
  };
  return items[role] || [];
}

pages.dashboard = async (app) => {
  const d = await api('/api/v1/dashboard');
  // Refreshed when a document in scope changes (a sync, a web action elsewhere).
  live(() => { if (route().page === 'dashboard') render(); });
  const fig = (k, v, cls) => h('div', { class: 'fig ' + (cls || ''), 'data-fig': k }, h('div', { class: 'v' }, v), h('div', { class: 'l' }, t('fig.' + k)));
  const byName = (g) => g.name || g.id || t('no.park');
  add(app, h('h1', {}, t('nav.dashboard'), ' ', h('small', { class: 'muted' }, d.today)),
    h('p', { class: 'no-print' }, downloadButton('/api/v1/statistics.xlsx', '月度统计-' + todayChina() + '.xlsx', t('export.stats'), 'stats')),
    h('div', { class: 'figs' },
      fig('total', d.total), fig('open', d.open), fig('overdue', d.overdue, 'bad'), fig('major_open', d.major_open, 'major'),
      fig('closed', d.closed, 'ok'), fig('closure_rate', (d.closure_rate * 100).toFixed(1) + '%'),
      h('div', { class: 'fig', 'data-fig': 'median' }, h('div', { class: 'v' }, d.median_days_to_close === null ? '—' : d.median_days_to_close), h('div', { class: 'l' }, t('fig.median')))),
    legend(),
    h('div', { class: 'grid2' },
      h('div', { class: 'card', id: 'by-township' }, h('h2', {}, t('by.township')), barChart(d.by_township, byName)),
      h('div', { class: 'card', id: 'by-park' }, h('h2', {}, t('by.park')), barChart(d.by_park, byName)),
      h('div', { class: 'card', id: 'by-agency' }, h('h2', {}, t('by.agency')), barChart(d.by_agency, byName)),
      h('div', { class: 'card', id: 'by-month' }, h('h2', {}, t('by.month')), monthChart(d.by_month))),
    h('div', { class: 'card', id: 'by-enterprise' }, h('h2', {}, t('by.enterprise')),
      h('div', { class: 'table-wrap' }, h('table', {},
        h('thead', {}, h('tr', {}, [t('enterprise'), t('fig.total'), t('fig.open'), t('fig.overdue'), t('fig.major_open'), t('fig.closed'), ''].map((x) => h('th', {}, x)))),
        h('tbody', {}, d.by_enterprise.map((g) => h('tr', { 'data-enterprise': g.id }, h('td', {}, g.name), h('td', {}, g.total), h('td', {}, g.open),
          h('td', {}, g.overdue), h('td', {}, g.major_open), h('td', {}, g.closed), h('td', {}, h('a', { href: '#/file/' + g.id }, t('file'))))))))),
    h('div', { class: 'card' }, h('h2', {}, t('by.state')), h('dl', { class: 'kv' }, Object.entries(d.by_state).map(([k, v]) => [h('dt', {}, t('state.' + k)), h('dd', {}, v)]))));
};

async function hazardList(app, title, query, showFilters) {
  const params = new URLSearchParams(query);
  add(app, h('h1', {}, title));
  if (showFilters) {
    const sel = (name, opts) => h('label', {}, t(name), h('select', { name }, h('option', { value: '' }, t('all')),
      opts.map((o) => h('option', { value: o, selected: params.get(name) === o }, t(name + '.' + o)))));
    const f = h('form', { class: 'filters', id: 'hazard-filters' },
      sel('state', ['open', 'notified', 'in_progress', 'submitted', 'accepted', 'closed']), sel('grade', ['general', 'major']),
      h('label', {}, t('overdue'), h('select', { name: 'overdue' }, h('option', { value: '' }, t('all')), h('option', { value: 'true', selected: params.get('overdue') === 'true' }, t('overdue')))),
      h('button', { class: 'primary', type: 'submit' }, t('filter')));
    f.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const q = new URLSearchParams();
      for (const [k, v] of new FormData(f)) if (v) q.set(k, v);
      location.hash = '#/' + route().page + (q.toString() ? '?' + q : '');
    });
    add(app, f);
  }
  const rows = await api('/api/v1/hazards?' + params);
  if (showFilters) add(app, h('p', { class: 'no-print' }, ['xlsx', 'csv'].map((ext) => [ledgerButton(params, ext), ' '])));
  add(app, h('div', { class: 'card' }, hazardTable(rows)));
}
/** Downloads the hazard ledger (隐患台账) with the list's filters that the ledger knows. */
function ledgerButton(params, ext) {
  const q = new URLSearchParams();
  for (const k of ['state', 'grade', 'township', 'agency', 'enterprise', 'from', 'to']) if (params.get(k)) q.set(k, params.get(k));
  return downloadButton('/api/v1/ledger.' + ext + (q.toString() ? '?' + q : ''), '隐患台账-' + todayChina() + '.' + ext, t('export.' + ext), ext);
}
/** A button that fetches `path` with the session's token and saves it as `filename`. */
function downloadButton(path, filename, label, tag) {
  return h('button', { type: 'button', 'data-export': tag, onclick: async () => {
    try {
      const resp = await api(path, { raw: true });
      const url = URL.createObjectURL(await resp.blob());
      const a = h('a', { href: url, download: filename }); document.body.append(a); a.click(); a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
    } catch (err) { message(err.message, true); }
  } }, label);
}
pages.hazards = (app, _id, q) => hazardList(app, session.me.role === 'enterprise_manager' ? t('nav.mine') : t('nav.hazards'), q, true);
pages.verify = (app) => hazardList(app, t('nav.verify'), 'state=submitted', false);
pages.users = async (app) => {
  const users = await api('/api/v1/users');
  const act = async (u, what, body) => {
    try {
      await api('/api/v1/users/' + u.id + '/' + what, { method: 'POST', json: body || {} });
      message(t('done'));
      render();
    } catch (err) { message(err.message, true); }
  };
  add(app, h('h1', {}, t('nav.users')), h('div', { class: 'card', id: 'users' }, h('table', {},
    h('thead', {}, h('tr', {}, [t('username'), t('who'), t('state'), ''].map((x) => h('th', {}, x)))),
    h('tbody', {}, users.map((u) => {
      const pw = h('input', { type: 'password', minlength: 8, placeholder: t('user.new_password'), autocomplete: 'new-password' });
      return h('tr', { 'data-user': u.username },
        h('td', {}, u.username), h('td', {}, u.display_name, ' (', t('role.' + u.role), ')'),
        h('td', {}, u.disabled_at ? h('span', { class: 'badge overdue' }, t('user.disabled')) : '—'),
        h('td', {}, u.id === session.me.id ? '' : [
          h('button', { type: 'button', 'data-act': u.disabled_at ? 'enable' : 'disable', onclick: () => act(u, u.disabled_at ? 'enable' : 'disable') },
            t(u.disabled_at ? 'user.enable' : 'user.disable')), ' ',
          pw, ' ', h('button', { type: 'button', 'data-act': 'password', onclick: () => act(u, 'password', { password: pw.value }) }, t('user.password'))]));
    })))));
};
pages.import = async (app) => {
  // What each role may import into its own area (the server decides; this only offers it).
  const kinds = { supervisor: ['enterprises', 'users'], agency_admin: ['users', 'contracts'] }[session.me.role] || [];
  const kind = h('select', { id: 'import-kind' }, kinds.map((k) => h('option', { value: k }, t('import.' + k))));
  const file = h('input', { type: 'file', id: 'import-file', accept: '.csv,.xlsx,text/csv,application/vnd.openxmlformats-officedocument.spreadsheetml.sheet' });
  const out = h('div', { id: 'import-result' });
  const go = async (ev) => {
    ev.preventDefault();
    out.textContent = '';
    const f = file.files[0];
    if (!f) { message(t('import.file'), true); return; }
    try {
      const r = await api('/api/v1/imports/' + kind.value, { method: 'POST', body: f, headers: { 'content-type': f.type || 'application/octet-stream' } });
      message(r.message);
    } catch (err) {
      message(err.message, true);
      const rows = (err.body && err.body.errors) || [];
      if (rows.length) add(out, h('table', { id: 'import-errors' },
        h('thead', {}, h('tr', {}, [t('import.row'), t('import.problem')].map((x) => h('th', {}, x)))),
        h('tbody', {}, rows.map((e) => h('tr', {}, h('td', {}, String(e.row)), h('td', {}, e.text))))));
    }
  };
  add(app, h('h1', {}, t('nav.import')), h('div', { class: 'card' },
    h('form', { id: 'import-form', onsubmit: go },
      h('p', { class: 'muted' }, t('import.hint')),
      h('label', {}, t('import.kind'), ' ', kind), ' ',
      h('label', {}, t('import.file'), ' ', file), ' ',
      h('button', { type: 'submit' }, t('import.go'))),
    out));
};
pages.inbox = async (app) => {
  const items = await api('/api/v1/inbox');
  add(app, h('h1', {}, t('nav.inbox')), h('div', { class: 'card', id: 'inbox' }, items.length ? h('table', {},
    h('thead', {}, h('tr', {}, [t('when'), t('kind'), t('enterprise'), t('description'), ''].map((x) => h('th', {}, x)))),
    h('tbody', {}, items.map((i) => h('tr', { 'data-kind': i.kind },
      h('td', {}, fmtTime(i.created_at)),
      h('td', {}, h('span', { class: 'badge ' + (/overdue|late/.test(i.kind) ? 'overdue' : '') }, pickLang(i.label))),
      h('td', {}, i.enterprise_name), h('td', {}, i.description),
      h('td', {}, h('a', { href: '#/hazard/' + i.hazard_id }, t('open.detail'))))))) : h('p', { class: 'muted' }, t('none'))));
};
pages.major = async (app) => {
  await hazardList(app, t('nav.major'), 'grade=major', false);
  const reports = await api('/api/v1/reports/major');
  add(app, h('h2', {}, t('reported')), h('div', { class: 'card' }, reports.length ? h('table', {},
    h('thead', {}, h('tr', {}, h('th', {}, t('found_at')), h('th', {}, t('report.claimed')), h('th', {}, t('report.received')), h('th', {}, t('report.status')), h('th', {}, ''))),
    h('tbody', {}, reports.map((r) => h('tr', { 'data-report': r.report_status },
      h('td', {}, fmtTime(r.found_at || r.reported_at)), h('td', {}, fmtTime(r.report_claimed_at)), h('td', {}, fmtTime(r.report_received_at)),
      h('td', {}, h('span', { class: 'badge ' + (['late', 'missing'].includes(r.report_status) ? 'overdue' : '') }, t('report.' + r.report_status)),
        r.received_late ? [' ', h('span', { class: 'badge overdue' }, t('report.received_late'))] : null),
      h('td', {}, h('a', { href: '#/hazard/' + r.hazard_id }, t('open.detail'))))))) : h('p', { class: 'muted' }, t('none'))));
};

pages.visits = async (app, _id, q) => {
  const params = new URLSearchParams(q);
  const ents = await api('/api/v1/enterprises').catch(() => []);
  const f = h('form', { class: 'filters', id: 'visit-filters' },
    h('label', {}, t('enterprise'), h('select', { name: 'enterprise' }, h('option', { value: '' }, t('all')),
      ents.map((e) => h('option', { value: e.id, selected: params.get('enterprise') === e.id }, e.name)))),
    h('label', {}, t('from'), h('input', { type: 'date', name: 'from', value: params.get('from') || '' })),
    h('label', {}, t('to'), h('input', { type: 'date', name: 'to', value: params.get('to') || '' })),
    h('button', { class: 'primary', type: 'submit' }, t('filter')));
  f.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const nq = new URLSearchParams();
    for (const [k, v] of new FormData(f)) if (v) nq.set(k, v);
    location.hash = '#/visits' + (nq.toString() ? '?' + nq : '');
  });
  const names = Object.fromEntries(ents.map((e) => [e.id, e.name]));
  // Dates are filtered by the server (China calendar days, inclusive); it refuses bad ranges.
  const aq = new URLSearchParams();
  for (const k of ['enterprise', 'from', 'to']) if (params.get(k)) aq.set(k, params.get(k));
  let rows = [];
  try { rows = await api('/api/v1/visits' + (aq.toString() ? '?' + aq : '')); } catch (e) {
    if (e.status !== 400) throw e;
    message(e.message, true); // e.g. from after to: keep the form so it can be corrected
  }
  add(app, h('h1', {}, t('nav.visits')), f, h('div', { class: 'card' }, rows.length ? h('div', { class: 'table-wrap' }, h('table', { class: 'visits' },
    h('thead', {}, h('tr', {}, [t('started'), t('enterprise'), t('place'), t('checked'), t('failed'), t('signature'), ''].map((x) => h('th', {}, x)))),
    h('tbody', {}, rows.map((v) => h('tr', { 'data-visit': v.id }, h('td', {}, fmtTime(v.started_at)), h('td', {}, names[v.enterprise_id] || v.enterprise_id.slice(0, 8)),
      h('td', {}, v.place), h('td', {}, v.checklist_total), h('td', {}, v.checklist_failed), h('td', {}, v.signed_by || t('unsigned')),
      h('td', {}, h('a', { href: '#/visit/' + v.id }, t('open.detail')))))))) : h('p', { class: 'muted' }, t('none'))));
};

pages.visit = async (app, id) => {
  const [r, changes] = await Promise.all([api('/api/v1/visits/' + id + '/record'), api('/api/v1/visits/' + id + '/history')]);
  const v = r.visit;
  add(app, h('h1', {}, t('visit'), ' · ', r.enterprise ? r.enterprise.name : ''),
    h('p', { class: 'no-print' }, h('a', { href: '#/notice/' + id, id: 'notice-link' }, t('notice')), ' · ',
      r.enterprise ? h('a', { href: '#/file/' + r.enterprise.id }, t('file')) : ''),
    h('div', { class: 'card' }, h('dl', { class: 'kv' },
      h('dt', {}, t('place')), h('dd', { id: 'visit-place' }, v.place),
      h('dt', {}, t('started')), h('dd', {}, fmtTime(v.started_at)),
      h('dt', {}, t('agency')), h('dd', {}, r.agency_name),
      h('dt', {}, t('township')), h('dd', {}, r.township_name))),
    h('h2', {}, t('checklist')),
    h('div', { class: 'card' }, r.checklist.length ? h('table', { class: 'checklist' }, h('tbody', {}, r.checklist.map((c) =>
      h('tr', {}, h('td', {}, c.title), h('td', {}, t('res.' + c.result)), h('td', {}, c.note))))) : h('p', { class: 'muted' }, t('none'))),
    h('h2', {}, t('hazards')),
    h('div', { id: 'visit-hazards' }, r.hazards.map((hz) => h('div', { class: 'card hz', 'data-hazard': hz.id },
      h('p', {}, gradeBadge(hz.grade), ' ', stateBadge(hz.state), ' ', h('span', { class: 'badge signed-' + hz.signed, 'data-signed': hz.signed }, t('signed.' + hz.signed)), ' ', h('a', { href: '#/hazard/' + hz.id }, hz.description)),
      h('p', { class: 'muted' }, hz.location, ' · ', t('deadline'), ' ', hz.deadline || '—'),
      photoStrip(hz.photos)))),
    h('h2', {}, t('signature')),
    h('div', { class: 'card signature', id: 'signature' }, r.signature ? [h('p', {}, r.signature.signer_name, ' · ', fmtTime(r.signature.signed_at)), photoStrip([r.signature.image])] : h('p', { class: 'muted' }, t('unsigned'))),
    h('h2', {}, t('changes')), h('div', { class: 'card', id: 'visit-changes' }, changesTable(changes)));
};

function actionForms(hz, onDone) {
  const forms = [];
  const form = (title, fields, build, cls) => {
    const f = h('form', { 'data-action': cls }, h('strong', {}, title), fields, h('button', { class: 'act' + (cls === 'reject' ? ' danger' : ''), type: 'submit' }, t('submit')));
    f.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const btn = f.querySelector('button[type=submit]'); btn.disabled = true;
      try {
        const body = await build(new FormData(f));
        await api('/api/v1/hazards/' + hz.hazard.id + '/events', { method: 'POST', json: body });
        message(t('done')); onDone();
      } catch (e) { message(e.message, true); btn.disabled = false; }
    });
    forms.push(f);
  };
  // The forms come from the server's `actions` alone (sync_core::actions::allowed_actions):
  // a page never offers what the server would refuse, nor hides what it would accept.
  const text = (name, label, req) => h('label', {}, t(label), h('textarea', { name, required: req }));
  const note = (fd) => fd.get('note') || '';
  const pend = hz.pending_extension;
  const builders = {
    notify: () => form(t('act.notified'), [], () => ({ kind: 'notified' }), 'notified'),
    sign_for: () => form(t('act.signed_for'), h('label', {}, t('signer'), h('input', { name: 'signer', required: true, maxlength: 50, value: session.me.display_name || '' })), (fd) => ({ kind: 'signed_for', signer: fd.get('signer') }), 'signed_for'),
    submit_rectification: () => form(t('act.submit'), [text('note', 'note', hz.hazard.grade !== 'major'), h('label', {}, t('photos'), h('input', { type: 'file', name: 'photos', accept: 'image/jpeg,image/png', multiple: true, required: hz.hazard.grade === 'major' }))], async (fd) => {
      const files = fd.getAll('photos').filter((f) => f && f.size);
      if (files.length) message(t('uploading'));
      const photos = [];
      for (const file of files) photos.push(await uploadPhoto(file));
      return { kind: 'rectification_submitted', note: note(fd), photos };
    }, 'submit'),
    request_extension: () => form(t('act.extension'), [h('label', {}, t('until'), h('input', { type: 'date', name: 'until', required: true, min: hz.hazard.deadline || '' })), text('reason', 'reason', true)],
      (fd) => ({ kind: 'extension_requested', until: fd.get('until'), reason: fd.get('reason') }), 'extension'),
    accept: () => form(t('act.verify') + ' · ' + t('accept'), text('note', 'note', false), (fd) => ({ kind: 'verified', accepted: true, note: note(fd) }), 'accept'),
    reject: () => form(t('act.verify') + ' · ' + t('reject'), text('note', 'note', true), (fd) => ({ kind: 'verified', accepted: false, note: note(fd) }), 'reject'),
    grant_extension: () => pend && form(t('act.grant') + ' (' + pend.until + ')', [], () => ({ kind: 'extension_granted', request: pend.request, until: pend.until }), 'grant'),
    refuse_extension: () => pend && form(t('act.refuse'), text('reason', 'reason', true), (fd) => ({ kind: 'extension_refused', request: pend.request, reason: fd.get('reason') }), 'refuse'),
    report_to_regulator: () => form(t('act.report'), h('label', {}, t('report.to'), h('input', { name: 'to', required: true, maxlength: 200 })), (fd) => ({ kind: 'reported_to_regulator', to: fd.get('to') }), 'report'),
    put_under_supervision: () => form(t('act.supervise'), text('note', 'note', false), (fd) => ({ kind: 'supervision_put', note: note(fd) }), 'supervise'),
    lift_supervision: () => form(t('act.lift'), text('note', 'note', false), (fd) => ({ kind: 'supervision_lifted', note: note(fd) }), 'lift'),
    close: () => form(t('act.close'), text('note', 'note', false), (fd) => ({ kind: 'closed', note: note(fd) }), 'close'),
    reopen: () => form(t('act.reopen'), text('reason', 'reason', true), (fd) => ({ kind: 'reopened', reason: fd.get('reason') }), 'reopen'),
    upgrade: () => form(t('act.upgrade'), text('reason', 'reason', true), (fd) => ({ kind: 'regraded', grade: 'major', reason: fd.get('reason') }), 'upgrade'),
    downgrade: () => form(t('act.downgrade'), text('reason', 'reason', true), (fd) => ({ kind: 'regraded', grade: 'general', reason: fd.get('reason') }), 'downgrade'),
  };
  for (const a of hz.actions || []) if (a.allowed && builders[a.action]) builders[a.action]();
  return forms.length ? h('div', { class: 'actions' }, forms) : null;
}

// Fields two people set at once: every value is shown; whoever may edit the details picks one.
function conflictCards(hz, onDone) {
  if (!(hz.conflicts || []).length) return null;
  const mayEdit = (hz.actions || []).some((a) => a.action === 'edit_details' && a.allowed);
  return h('div', { class: 'card conflicts', id: 'hazard-conflicts' }, hz.conflicts.map((c) => h('div', { 'data-field': c.field },
    h('p', {}, h('strong', {}, c.label), ' · ', t('conflict')),
    h('ul', {}, c.values.map((v) => h('li', {}, v || '—', mayEdit ? [' ', (() => {
      const b = h('button', { class: 'act', type: 'button', 'data-value': v }, t('pick'));
      b.addEventListener('click', async () => {
        b.disabled = true;
        try {
          await api('/api/v1/hazards/' + hz.hazard.id + '/resolve', { method: 'POST', json: { field: c.field, value: v } });
          message(t('done')); onDone();
        } catch (e) { message(e.message, true); b.disabled = false; }
      });
      return b;
    })()] : null))))));
}

async function sha256Hex(buf) {
  const d = await crypto.subtle.digest('SHA-256', buf);
  return Array.from(new Uint8Array(d), (b) => b.toString(16).padStart(2, '0')).join('');
}
async function uploadPhoto(file) {
  const buf = await file.arrayBuffer();
  const sha = await sha256Hex(buf);
  const type = file.type === 'image/png' ? 'image/png' : 'image/jpeg';
  const r = await api('/api/v1/photos/' + sha + '?offset=0', { method: 'PUT', body: buf, headers: { 'x-photo-size': String(buf.byteLength), 'content-type': type } });
  if (!r.complete) throw new Error('upload incomplete');
  return { sha256: sha, size: buf.byteLength, media_type: type, captured_at: file.lastModified || null, gps: null, added_by: session.me.id };
}

pages.hazard = async (app, id) => {
  const [hz, changes] = await Promise.all([api('/api/v1/hazards/' + id), api('/api/v1/hazards/' + id + '/changes')]);
  const x = hz.hazard;
  const again = () => { app.textContent = ''; pages.hazard(app, id); };
  const evidence = hz.history.filter((e) => e.kind === 'rectification_submitted').flatMap((e) => (e.detail && e.detail.photos) || []).map((p) => (typeof p === 'string' ? { sha256: p } : p));
  add(app, h('h1', {}, x.description),
    h('p', {}, gradeBadge(x.grade), ' ', h('span', { id: 'hazard-state' }, stateBadge(x.state)), x.overdue ? [' ', h('span', { class: 'badge overdue' }, t('overdue'))] : null,
      x.under_supervision ? [' ', h('span', { class: 'badge major' }, t('supervised'))] : null),
    h('div', { class: 'card' }, h('dl', { class: 'kv' },
      [['enterprise', x.enterprise_name], ['location', x.location], ['criterion', x.criterion], ['measure', x.measure], ['deadline', x.deadline || '—'],
        ['responsible', x.responsible_person], ['reported', x.reported_at ? fmtTime(x.reported_at) : '—'], ['closed_at', fmtTime(x.closed_at)]]
        .map(([k, v]) => [h('dt', {}, t(k)), h('dd', {}, v)])),
    h('p', {}, h('a', { href: '#/visit/' + x.visit_id }, t('visit')), ' · ', h('a', { href: '#/file/' + x.enterprise_id }, t('file')))),
    conflictCards(hz, again),
    actionForms(hz, again),
    h('h2', {}, t('photos')), h('div', { class: 'card', id: 'hazard-photos' }, photoStrip([...hz.photos, ...evidence])),
    h('h2', {}, t('history')), h('div', { class: 'card', id: 'hazard-history' }, eventsTable(hz.history)),
    h('h2', {}, t('changes')), h('div', { class: 'card', id: 'hazard-changes' }, changesTable(changes)));
};

pages.enterprises = async (app) => {
  const ents = await api('/api/v1/enterprises');
  if (session.me.role === 'enterprise_manager' && ents.length === 1) { location.hash = '#/file/' + ents[0].id; return; }
  add(app, h('h1', {}, t('nav.enterprises')), h('div', { class: 'card' }, ents.length ? h('table', { class: 'enterprises' },
    h('tbody', {}, ents.map((e) => h('tr', { 'data-enterprise': e.id }, h('td', {}, e.name), h('td', { class: 'hide-sm' }, e.address),
      h('td', {}, h('a', { href: '#/file/' + e.id }, t('file'))), h('td', {}, h('a', { href: '#/visits?enterprise=' + e.id }, t('visits'))))))) : h('p', { class: 'muted' }, t('none'))));
};

pages.file = async (app, id) => {
  const f = await api('/api/v1/enterprises/' + id + '/file');
  const e = f.enterprise || {};
  add(app, h('h1', {}, t('file'), ' · ', e.name),
    h('p', { class: 'no-print' }, h('button', { class: 'primary', type: 'button', onclick: () => window.print() }, t('print')), ' ',
      downloadButton('/api/v1/enterprises/' + id + '/file.pdf', '一企一档-' + (e.name || id) + '.pdf', t('pdf'), 'file-pdf'), ' ',
      downloadButton('/api/v1/enterprises/' + id + '/file.zip', '一企一档-' + (e.name || id) + '.zip', t('export.zip'), 'zip')),
    h('div', { class: 'card' }, h('dl', { class: 'kv' }, [['uscc', e.uscc], ['address', e.address], ['industry', e.industry]].map(([k, v]) => [h('dt', {}, t(k)), h('dd', {}, v || '—')]))),
    h('h2', {}, t('visits')),
    h('div', { class: 'card' }, f.visits.length ? h('table', {}, h('tbody', {}, f.visits.map((v) => h('tr', {}, h('td', {}, fmtTime(v.started_at)), h('td', {}, v.place),
      h('td', {}, v.signed_by || t('unsigned')), h('td', {}, h('a', { href: '#/visit/' + v.id }, t('open.detail')), ' ', h('a', { href: '#/notice/' + v.id }, t('notice'))))))) : h('p', { class: 'muted' }, t('none'))),
    h('h2', {}, t('hazards')),
    h('div', { id: 'file-hazards' }, f.hazards.map((d) => h('div', { class: 'card hz', 'data-hazard': d.hazard.id },
      h('h3', {}, gradeBadge(d.hazard.grade), ' ', d.hazard.description, ' ', stateBadge(d.hazard.state)),
      h('p', { class: 'muted' }, d.hazard.location, ' · ', t('deadline'), ' ', d.hazard.deadline || '—', ' · ', t('responsible'), ' ', d.hazard.responsible_person),
      eventsTable(d.history)))));
};

pages.notice = async (app, id) => {
  const r = await api('/api/v1/visits/' + id + '/record');
  const e = r.enterprise || {};
  const dl = h('button', { class: 'primary', type: 'button', id: 'pdf' }, t('pdf'));
  dl.addEventListener('click', async () => {
    try {
      const resp = await api('/api/v1/visits/' + id + '/notice.pdf', { raw: true });
      const url = URL.createObjectURL(await resp.blob());
      const a = h('a', { href: url, download: 'notice-' + id + '.pdf' }); document.body.append(a); a.click(); a.remove();
    } catch (err) { message(err.message, true); }
  });
  add(app, h('div', { class: 'notice card' },
    h('p', { class: 'no-print' }, h('button', { class: 'primary', type: 'button', onclick: () => window.print() }, t('print')), ' ', dl),
    h('h1', {}, '隐患整改通知书', lang === 'en' ? h('div', { class: 'muted' }, 'Rectification notice') : null),
    h('dl', { class: 'kv' }, [['enterprise', e.name], ['address', e.address], ['uscc', e.uscc], ['township', r.township_name], ['agency', r.agency_name],
      ['place', r.visit.place], ['started', fmtTime(r.visit.started_at)]].map(([k, v]) => [h('dt', {}, t(k)), h('dd', {}, v || '—')])),
    h('p', {}, e.name, '：', t('notice.intro')),
    r.hazards.map((hz, i) => h('div', { class: 'hz', 'data-hazard': hz.id },
      h('h3', {}, `${i + 1}. `, hz.description, ' ', gradeBadge(hz.grade)),
      h('dl', { class: 'kv' }, [['location', hz.location], ['description', hz.description], ['criterion', hz.criterion], ['grade', t('grade.' + hz.grade)],
        ['measure', hz.measure], ['deadline', hz.deadline || '—'], ['responsible', hz.responsible_person],
        ...(hz.grade === 'major' ? [['funds', hz.funds_yuan === null ? '—' : hz.funds_yuan], ['plan', hz.emergency_plan || '—']] : [])]
        .map(([k, v]) => [h('dt', {}, t(k)), h('dd', {}, v)])),
      photoStrip(hz.photos))),
    h('h2', {}, t('signature')),
    h('div', { class: 'signature' }, r.signature ? [h('p', {}, r.signature.signer_name, ' · ', fmtTime(r.signature.signed_at)), photoStrip([r.signature.image])] : h('p', {}, t('unsigned'))),
    h('p', { class: 'muted' }, t('five'))));
};

// ---------- router ----------
function route() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [path, q] = raw.split('?');
  const [page, id] = path.split('/');
  return { page: page || '', id: id ? decodeURIComponent(id) : null, q: q || '' };
}
/** The open change stream (`/api/v1/events/stream`), closed when the page changes. */
let liveAbort = null;
/** Calls `onChange` (at most once a second) whenever a document in scope changes. */
async function live(onChange) {
  const ctrl = new AbortController();
  liveAbort = ctrl;
  let timer = null;
  while (!ctrl.signal.aborted) {
    try {
      const resp = await api('/api/v1/events/stream', { raw: true, signal: ctrl.signal });
      const reader = resp.body.getReader();
      const dec = new TextDecoder();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i); buf = buf.slice(i + 2);
          if (/^event: (change|resync)$/m.test(block)) { clearTimeout(timer); timer = setTimeout(() => { if (!ctrl.signal.aborted) onChange(); }, 1000); }
        }
      }
    } catch (e) {
      if (ctrl.signal.aborted) return;
      await new Promise((r) => setTimeout(r, 5000));
    }
  }
}

async function render() {
  if (liveAbort) { liveAbort.abort(); liveAbort = null; }
  const app = $('#app');
  app.textContent = '';
  message('');
  document.documentElement.lang = lang === 'en' ? 'en' : 'zh-CN';
  document.title = t('app.title');
  for (const el of document.querySelectorAll('[data-t]')) el.textContent = t(el.dataset.t);
  $('#lang').textContent = lang === 'en' ? '中文' : 'EN';
  let { page, id, q } = route();
  const me = session.me;
  if (!session.token || !me) page = 'login';
  else if (page === '' || page === 'login') { location.hash = home(me.role); return; }
  $('#logout').hidden = page === 'login';
  $('#who').textContent = me && page !== 'login' ? `${me.display_name} · ${t('role.' + me.role)}` : '';
  $('#nav').textContent = '';
  if (page !== 'login') for (const [p, k] of navFor(me.role)) $('#nav').append(h('a', { href: '#/' + p, class: p === page ? 'active' : '' }, t(k)));
  const fn = pages[page];
  if (!fn) { add(app, h('p', {}, t('none'))); return; }
  add(app, h('p', { class: 'muted', id: 'loading' }, t('loading')));
  try {
    const holder = h('div', { id: 'page-' + page });
    await fn(holder, id, q);
    app.textContent = '';
    add(app, holder);
    app.dataset.ready = page;
  } catch (e) {
    if (e.status === 401) return;
    app.textContent = '';
    add(app, h('div', { class: 'card', id: 'page-error' }, h('p', {}, t('error')), h('p', { class: 'muted' }, e.message)));
    app.dataset.ready = 'error';
  }
}
window.addEventListener('hashchange', () => { delete $('#app').dataset.ready; render(); });
$('#lang').addEventListener('click', () => { lang = lang === 'en' ? 'zh' : 'en'; localStorage.setItem('lang', lang); render(); });
$('#logout').addEventListener('click', async () => {
  try { await api('/api/v1/auth/logout', { method: 'POST' }); } catch { /* logged out anyway */ }
  session.clear(); location.hash = '#/login';
});
$('#viewer').addEventListener('click', () => { $('#viewer').hidden = true; });
render();
