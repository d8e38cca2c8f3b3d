// The gate display board. It fetches the latest results, then keeps them current from the
// node's event stream (/board/events). When the node goes away the browser's EventSource
// reconnects by itself; each time the stream opens the list is fetched again, so nothing that
// was committed meanwhile is missed. All ledger data goes into the page as text, never as
// markup.
'use strict';

(function () {
  var MAX_ROWS = 60;
  var LIVE_MS = 8000;
  var params = new URLSearchParams(window.location.search);
  var market = params.get('market') || '';
  var rowsEl = document.getElementById('rows');
  var emptyEl = document.getElementById('empty');
  var connEl = document.getElementById('conn');
  var clockEl = document.getElementById('clock');
  var countsEl = document.getElementById('counts');
  var scroller = document.getElementById('scroller');

  var reports = new Map();   // report id -> report JSON
  var elements = new Map();  // report id -> { el, sig }
  var arrived = new Map();   // report id -> when it came in live
  // For people debugging a screen, and for the browser tests.
  var state = { connected: false, loaded: false, refreshes: 0, events: 0 };
  window.hurenBoard = state;

  var CST_MS = 8 * 3600 * 1000;
  function cstNow() { return new Date(Date.now() + CST_MS).toISOString(); }

  // "2026-12-04 09:30:00 CST" -> "09:30", with the date above it when it is not today.
  function timeCell(text) {
    var d = document.createElement('div');
    d.className = 'c time';
    if (typeof text !== 'string' || text.length < 16) { d.textContent = '—'; return d; }
    var day = text.slice(0, 10);
    if (day !== cstNow().slice(0, 10)) {
      var small = document.createElement('small');
      small.textContent = day.slice(5);
      d.appendChild(small);
    }
    d.appendChild(document.createTextNode(text.slice(11, 16)));
    return d;
  }

  function cell(cls, text) {
    var d = document.createElement('div');
    d.className = 'c ' + cls;
    d.textContent = text || '—';
    return d;
  }

  function kind(r) {
    if (r.status === 'STATUS_REVOKED') return 'revoked';
    return r.report && r.report.result === 'POSITIVE' ? 'fail' : 'pass';
  }

  function build(r) {
    var rep = r.report || {};
    var k = kind(r);
    var el = document.createElement('div');
    el.className = 'row ' + k;
    el.setAttribute('role', 'listitem');
    el.dataset.reportId = r.report_id;
    el.dataset.result = k;
    el.appendChild(timeCell(rep.tested_at_cst));
    el.appendChild(cell('market', r.market && r.market.name_zh));
    el.appendChild(cell('stall', rep.stall_code));
    el.appendChild(cell('product', rep.product));

    var items = document.createElement('div');
    items.className = 'c items';
    (rep.items || []).forEach(function (item, n) {
      if (n > 0) items.appendChild(document.createTextNode('、'));
      var s = document.createElement('span');
      s.textContent = item.name || item.code;
      if (item.result === 'POSITIVE') s.className = 'pos';
      items.appendChild(s);
    });
    el.appendChild(items);

    var result = document.createElement('div');
    result.className = 'c result';
    var mark = document.createElement('span');
    var word;
    if (k === 'revoked') {
      mark.className = 'mark revoked';
      mark.textContent = '⊘';
      word = '已撤销';
    } else if (k === 'fail') {
      mark.className = 'mark fail';
      var inner = document.createElement('span');
      inner.textContent = '✗';
      mark.appendChild(inner);
      word = '疑似不合格';
    } else {
      mark.className = 'mark pass';
      mark.textContent = '✓';
      word = '合格';
    }
    mark.setAttribute('aria-hidden', 'true');
    result.appendChild(mark);
    result.appendChild(document.createTextNode(word));
    el.appendChild(result);
    if (arrived.has(r.report_id) && Date.now() - arrived.get(r.report_id) < LIVE_MS) {
      el.classList.add('live');
    }
    return el;
  }

  function ordered() {
    return Array.from(reports.values()).sort(function (a, b) {
      if (b.issued_at_ms !== a.issued_at_ms) return b.issued_at_ms - a.issued_at_ms;
      return a.report_id < b.report_id ? 1 : a.report_id > b.report_id ? -1 : 0;
    });
  }

  // Puts the rows in order, touching only rows that are new, changed or out of place.
  function render() {
    var list = ordered().slice(0, MAX_ROWS);
    var keep = new Set(list.map(function (r) { return r.report_id; }));
    reports.forEach(function (_, id) { if (!keep.has(id)) reports.delete(id); });
    elements.forEach(function (entry, id) {
      if (!keep.has(id)) { entry.el.remove(); elements.delete(id); }
    });
    var cursor = rowsEl.firstChild;
    var passes = 0;
    var fails = 0;
    list.forEach(function (r) {
      var sig = r.status + '|' + (r.report && r.report.result);
      var entry = elements.get(r.report_id);
      if (!entry || entry.sig !== sig) {
        var el = build(r);
        if (entry) { entry.el.replaceWith(el); if (cursor === entry.el) cursor = el; }
        entry = { el: el, sig: sig };
        elements.set(r.report_id, entry);
      }
      if (entry.el === cursor) {
        cursor = cursor.nextSibling;
      } else {
        rowsEl.insertBefore(entry.el, cursor);
      }
      if (kind(r) === 'fail') fails += 1; else if (kind(r) === 'pass') passes += 1;
    });
    emptyEl.hidden = list.length > 0;
    countsEl.textContent = '显示 ' + list.length + ' 条 · 合格 ' + passes + ' · 疑似不合格 ' + fails;
  }

  function upsert(r, live) {
    if (!r || !r.report_id) return;
    if (!live && !reports.has(r.report_id)) return;
    if (live && !reports.has(r.report_id)) {
      arrived.set(r.report_id, Date.now());
      showTop();
    }
    reports.set(r.report_id, r);
    state.events += 1;
    render();
  }

  function refresh() {
    var url = '/api/reports?limit=' + MAX_ROWS + (market ? '&market=' + encodeURIComponent(market) : '');
    return fetch(url, { cache: 'no-store' })
      .then(function (response) {
        if (!response.ok) throw new Error('HTTP ' + response.status);
        return response.json();
      })
      .then(function (body) {
        (body.reports || []).forEach(function (r) { reports.set(r.report_id, r); });
        state.loaded = true;
        state.refreshes += 1;
        render();
      })
      .catch(function () {
        // The stream reconnects and fetches again when the node is back.
      });
  }

  function setConnected(ok) {
    state.connected = ok;
    connEl.hidden = ok;
    document.body.classList.toggle('offline', !ok);
  }

  var source = null;
  var backoff = 1000;
  function connect() {
    source = new EventSource('/board/events' + (market ? '?market=' + encodeURIComponent(market) : ''));
    source.addEventListener('open', function () {
      setConnected(true);
      backoff = 1000;
      refresh();
    });
    source.addEventListener('report', function (e) { upsert(JSON.parse(e.data), true); });
    source.addEventListener('update', function (e) { upsert(JSON.parse(e.data), false); });
    source.addEventListener('resync', function () { refresh(); });
    source.addEventListener('error', function () {
      setConnected(false);
      // The browser retries by itself unless it gave up (a non-stream answer); then we do.
      if (source.readyState === EventSource.CLOSED) {
        source.close();
        window.setTimeout(connect, backoff);
        backoff = Math.min(backoff * 2, 15000);
      }
    });
  }

  // Slow scrolling through the list when it is longer than the screen: down, a pause at the
  // end, back to the top, a pause. A new result brings the top back into view.
  var holdUntil = Date.now() + 4000;
  var atEnd = false;
  function showTop() {
    scroller.scrollTop = 0;
    atEnd = false;
    holdUntil = Date.now() + 6000;
  }
  function scrollStep() {
    var max = scroller.scrollHeight - scroller.clientHeight;
    var now = Date.now();
    if (max <= 0 || now < holdUntil) return;
    if (scroller.scrollTop >= max - 1) {
      if (atEnd) { scroller.scrollTop = 0; atEnd = false; } else { atEnd = true; }
      holdUntil = now + 4000;
      return;
    }
    scroller.scrollTop += 1;
  }

  function tickClock() { clockEl.textContent = cstNow().slice(0, 19).replace('T', ' '); }

  tickClock();
  window.setInterval(tickClock, 1000);
  window.setInterval(scrollStep, 40);
  // Rows that came in live stop glowing after a while.
  window.setInterval(function () {
    var now = Date.now();
    arrived.forEach(function (t, id) {
      if (now - t >= LIVE_MS) {
        arrived.delete(id);
        var entry = elements.get(id);
        if (entry) entry.el.classList.remove('live');
      }
    });
  }, 1000);
  refresh();
  connect();
})();
