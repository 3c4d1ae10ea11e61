// Draws the report from the JSON in #data: the matrix (or check's
// verdict table) at once, a case's ladders when it is opened. Plain DOM
// calls, no library: the page must work opened from disk with nothing
// fetched.
(function () {
  'use strict';
  var t0 = performance.now();
  var root = document.documentElement;
  var errorBox = document.getElementById('errors');
  root.dataset.errors = '0';

  // Errors go into the page, where a reader (and the tests) see them.
  function reportError(text) {
    errorBox.hidden = false;
    var line = document.createElement('div');
    line.textContent = text;
    errorBox.appendChild(line);
    root.dataset.errors = String(errorBox.childElementCount);
  }
  window.addEventListener('error', function (e) {
    reportError('script error: ' + e.message + ' (line ' + e.lineno + ')');
  });

  var D = JSON.parse(document.getElementById('data').textContent);

  function el(tag, attrs, kids) {
    var e = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        var v = attrs[k];
        if (v === null || v === undefined || v === false) return;
        if (k === 'class') e.className = v;
        else if (k === 'text') e.textContent = v;
        else if (k === 'style') e.style.cssText = v;
        else if (k.slice(0, 2) === 'on') e.addEventListener(k.slice(2), v);
        else e.setAttribute(k, v === true ? '' : v);
      });
    }
    add(e, kids);
    return e;
  }
  function add(e, kids) {
    if (kids === null || kids === undefined || kids === false) return;
    if (!Array.isArray(kids)) kids = [kids];
    kids.forEach(function (k) {
      if (k === null || k === undefined || k === false) return;
      e.appendChild(typeof k === 'string' ? document.createTextNode(k) : k);
    });
  }

  // Every outcome class html.rs gives a cell, in the legend's order.
  var CATS = [
    ['tls-verified', 'TLS verified'],
    ['tls-trusted', 'TLS trusted'],
    ['tls-untrusted', 'TLS untrusted or anonymous'],
    ['plaintext', 'plaintext'],
    ['plaintext-credentials', 'plaintext with credentials'],
    ['deferred', 'deferred'],
    ['bounced', 'bounced'],
    ['not-modelled', 'not modelled (the scenario says nothing about that port)'],
    ['error', 'harness error']
  ];
  var CAT_NAME = {};
  CATS.forEach(function (c) { CAT_NAME[c[0]] = c[1]; });
  var MARK = { pass: '✓', fail: '✗', error: '!', inconclusive: '?', none: '' };
  var MARK_TITLE = {
    pass: 'as the scenario expects',
    fail: 'not as the scenario expects',
    error: 'no verdict: a harness error',
    inconclusive: "inconclusive: the MTA was too slow for the scenario's timing, on its run and its run again",
    none: ''
  };

  function secs(ms) { return (ms / 1000).toFixed(3); }

  function chip(c) {
    return el('span', { class: 'chip c-' + c.cat + (c.intercepted ? ' icpt' : '') }, c.cell);
  }

  var app = document.getElementById('app');
  document.title = D.title;
  add(app, el('h1', null, D.title));
  add(app, el('ul', { class: 'facts' }, D.facts.map(function (f) { return el('li', null, f); })));

  // ---- the run's matrix ----

  function cellText(c) {
    var dsn = c.dsn && c.cell.indexOf(c.dsn) < 0 ? el('span', { class: 'dsn' }, c.dsn) : null;
    return [el('span', { class: 'mark', title: MARK_TITLE[c.mark] }, MARK[c.mark]), ' ',
      el('span', { class: 'txt' }, c.cell), dsn ? ' ' : null, dsn];
  }

  var cellsByKey = {};

  function matrix(t) {
    var head = el('tr', null, [el('th', { class: 'scn' }, 'scenario')].concat(
      t.levels.map(function (l) { return el('th', null, l); })));
    var body = el('tbody');
    t.rows.forEach(function (r) {
      var tr = el('tr', { 'data-scenario': r[0] }, el('th', { class: 'scn', title: r[1] }, r[0]));
      r[2].forEach(function (i) {
        if (i === null) { tr.appendChild(el('td', { class: 'cell none' })); return; }
        var c = D.cases[i];
        var td = el('td', {
          class: 'cell c-' + c.cat + ' m-' + c.mark + (c.intercepted ? ' icpt' : ''),
          'data-key': c.key, 'data-cat': c.cat, 'data-mark': c.mark,
          title: (c.failure ? (c.mark === 'inconclusive' ? 'INCONCLUSIVE: ' : 'FAILED: ') + c.failure : MARK_TITLE[c.mark]) +
            (c.intercepted ? ' (TLS intercepted by the middlebox)' : '')
        }, el('a', { href: '#' + encodeURI(c.key) }, cellText(c)));
        cellsByKey[c.key] = td;
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
    return el('table', { class: 'matrix' }, [el('thead', null, head), body]);
  }

  function filters() {
    var counts = {};
    D.cases.forEach(function (c) { counts[c.cat] = (counts[c.cat] || 0) + 1; });
    var failed = D.cases.filter(function (c) { return c.mark !== 'pass'; }).length;
    var boxes = [];
    var bar = el('div', { class: 'filters', id: 'filters' });
    // Every outcome is listed, with its colour, as the matrix's legend.
    CATS.forEach(function (c) {
      var n = counts[c[0]] || 0;
      var box = el('input', { type: 'checkbox', checked: true, value: c[0], onchange: apply, disabled: !n });
      boxes.push(box);
      bar.appendChild(el('label', { class: 'chip c-' + c[0] + (n ? '' : ' zero') }, [box, ' ' + c[1] + ' (' + n + ')']));
    });
    var onlyFailed = el('input', { type: 'checkbox', onchange: apply });
    bar.appendChild(el('label', { class: 'plain' }, [onlyFailed, ' only failed expectations (' + failed + ')']));
    var name = el('input', { type: 'search', placeholder: 'scenario name', oninput: apply, 'aria-label': 'scenario name' });
    bar.appendChild(name);
    function apply() {
      var on = {};
      boxes.forEach(function (b) { on[b.value] = b.checked; });
      var needle = name.value.trim().toLowerCase();
      Array.prototype.forEach.call(document.querySelectorAll('table.matrix tbody tr'), function (tr) {
        var any = false;
        Array.prototype.forEach.call(tr.querySelectorAll('td.cell[data-key]'), function (td) {
          var show = on[td.dataset.cat] && (!onlyFailed.checked || td.dataset.mark !== 'pass');
          td.classList.toggle('dim', !show);
          any = any || show;
        });
        var named = !needle || tr.dataset.scenario.toLowerCase().indexOf(needle) >= 0;
        tr.hidden = !(any && named);
      });
    }
    return bar;
  }

  function legend() {
    return el('p', { class: 'legend' }, [
      '✓ as the scenario expects, ✗ not as it expects, ! no verdict (harness error); ',
      'a dashed outline: a middlebox intercepted TLS and read the message. ',
      'Open a cell for its ladder: the MTA, the middlebox and the relay, one arrow per SMTP line.'
    ]);
  }

  // ---- ladders ----

  // Grid columns: time, Postfix lane, segment, middlebox lane, segment,
  // relay lane, side notes. An arrow spans from lane to lane.
  var SPAN = {
    c: ['2 / 7', 'r'], s: ['2 / 7', 'l'],
    ch: ['2 / 5', 'r'], mc: ['2 / 5', 'l'],
    sh: ['4 / 7', 'l'], ms: ['4 / 7', 'r']
  };
  // What the middlebox did to a line: a word, and what it means when its
  // own note says no more.
  var CHANGE = {
    removed: ['REMOVED', 'the relay sent it; the MTA never got it'],
    added: ['INJECTED', 'the middlebox sent it; the other side never did'],
    kept: null,
    held: ['NOT FORWARDED', 'the middlebox kept it from the relay']
  };
  var EXPOSED = {
    pd: ['DATA IN PLAINTEXT', 'the message follows unencrypted: anyone on the path reads it'],
    pc: null,
    pa: ['CREDENTIALS IN PLAINTEXT', 'the SASL exchange crosses the path unencrypted'],
    rd: ['DATA READ BY THE MIDDLEBOX', 'inside TLS the middlebox terminated'],
    rc: null
  };

  // A note without the behaviour's name in front when its badge shows it.
  function unprefixed(note, b) {
    var names = b ? b.split(' ') : [];
    if (names.indexOf(note) >= 0) return '';
    var i = note.indexOf(': ');
    return i > 0 && names.indexOf(note.slice(0, i)) >= 0 ? note.slice(i + 2) : note;
  }

  function lanes(row, s) {
    add(row, [el('i', { class: 'lane', style: 'grid-column: 2' }),
      el('i', { class: 'lane', style: 'grid-column: 4' }),
      el('i', { class: 'lane', style: 'grid-column: 6' })]);
    if (s && s.p) {
      add(row, [el('i', { class: 'seg sa', style: 'grid-column: 3' }),
        el('i', { class: 'seg sb', style: 'grid-column: 5' })]);
    }
  }

  function stepRow(s, at) {
    var changed = s.d && s.d !== 'kept';
    var cls = 'step k-' + s.k + (s.d ? ' d-' + s.d : '') + (s.f ? ' f-' + s.f : '') +
      (s.p ? ' p-' + s.p : '') + (changed ? ' changed' : '') + (s.g ? ' grp' : '');
    var row = el('div', { class: cls, 'data-behaviour': s.b || null, 'data-kind': s.k });
    row.appendChild(el('span', { class: 't' }, secs(at + s.t)));
    lanes(row, s);
    var side = el('div', { class: 'side' });
    if (s.b && (changed || !s.g)) add(side, [el('span', { class: 'beh' }, s.b), ' ']);
    var span = SPAN[s.k];
    if (span) {
      row.appendChild(el('div', { class: 'arrow dir-' + span[1], style: 'grid-column: ' + span[0] },
        el('span', { class: 'x' }, s.x === '' ? '(empty line)' : s.x)));
    } else if (s.k === 'icpt') {
      row.appendChild(el('div', { class: 'band icpt-a', style: 'grid-column: 2 / 5' },
        'TLS session 1: the MTA ↔ middlebox (its own certificate)'));
      row.appendChild(el('div', { class: 'band ' + (s.p === 'icpt-tls' ? 'icpt-b' : 'icpt-plain'), style: 'grid-column: 4 / 7' },
        s.p === 'icpt-tls' ? 'TLS session 2: middlebox ↔ relay' : 'PLAINTEXT: middlebox ↔ relay'));
      add(side, unprefixed(s.x, s.b));
    } else if (s.k === 'tls') {
      row.appendChild(el('div', { class: 'band', style: 'grid-column: 2 / 7' },
        'TLS session: the MTA ↔ relay, end to end; the middlebox passes ciphertext'));
      add(side, s.x);
    } else {
      row.appendChild(el('div', { class: 'band', style: 'grid-column: 2 / 7' }, s.x));
    }
    var exp = s.f && EXPOSED[s.f];
    var change = s.d && CHANGE[s.d];
    if (change) {
      add(side, [el('strong', { class: 'what' }, change[0]), ' ']);
      // Inside a rewritten reply the group's heading carries the note.
      add(side, (s.w && !s.g && unprefixed(s.w, s.b)) || change[1]);
    }
    if (s.d === 'removed' && /STARTTLS/i.test(s.x)) {
      add(side, [el('br'), el('strong', { class: 'alert' }, 'STARTTLS STRIPPED:'), ' the MTA never learns that the relay offers TLS']);
    }
    if (exp) {
      add(side, [el('strong', { class: 'alert' }, exp[0]), ' ' + exp[1]]);
    } else if (s.w && !s.g && !change && span) {
      add(side, el('span', { class: 'note' }, unprefixed(s.w, s.b)));
    }
    row.appendChild(side);
    return row;
  }

  function groupHead(steps, g) {
    var sent = steps.filter(function (s) { return s.g === g && s.k === 'sh'; }).length;
    var got = steps.filter(function (s) { return s.g === g && s.k === 'mc'; });
    var b = (got[0] && got[0].b) || (steps.filter(function (s) { return s.g === g; })[0].b) || 'the middlebox';
    var note = got[0] && got[0].w ? unprefixed(got[0].w, b) : '';
    var row = el('div', { class: 'group-head', 'data-behaviour': b });
    row.appendChild(el('span', { class: 't' }));
    lanes(row, null);
    row.appendChild(el('div', { class: 'band chg', style: 'grid-column: 2 / 7' }, [
      el('span', { class: 'beh' }, b), ' changed a reply: ' + sent + ' line(s) the relay sent, then the ' +
        got.length + ' the MTA got instead']));
    row.appendChild(el('div', { class: 'side' }, el('span', { class: 'note' }, note)));
    return row;
  }

  function logBox(lines, title) {
    var box = el('aside', { class: 'log' }, el('h4', null, title || 'Postfix log'));
    if (!lines.length) box.appendChild(el('p', { class: 'empty' }, 'The MTA logged nothing about this attempt.'));
    lines.forEach(function (l) {
      var m = /status=(\w+)/.exec(l);
      box.appendChild(el('div', { class: 'll' + (m ? ' st st-' + m[1] : '') + (/TLS/.test(l) ? ' tlsl' : '') }, l));
    });
    return box;
  }

  function ladder(c, a) {
    var lad = el('div', { class: 'ladder' });
    var head = el('div', { class: 'lhead' });
    head.appendChild(el('span', { class: 't' }, 's'));
    head.appendChild(el('span', { class: 'lh', style: 'grid-column: 2' }, c.mta));
    head.appendChild(el('span', { class: 'lh', style: 'grid-column: 4' },
      'middlebox' + (c.behaviours.length ? ': ' + c.behaviours.join(' | ') : '')));
    head.appendChild(el('span', { class: 'lh', style: 'grid-column: 6' }, 'relay' + (c.relay ? ' ' + c.relay : '')));
    lad.appendChild(head);
    if (!a.conns.length) {
      lad.appendChild(el('p', { class: 'empty' }, 'No connection reached the middlebox during this attempt.'));
    }
    a.conns.forEach(function (conn, n) {
      var ch = el('div', { class: 'conn' });
      ch.appendChild(el('span', { class: 't' }, '+' + secs(conn.at)));
      lanes(ch, null);
      ch.appendChild(el('div', { class: 'band', style: 'grid-column: 2 / 7' },
        'connection ' + (n + 1) + ': ' + conn.label));
      ch.appendChild(el('div', { class: 'side' }, conn.end ? 'ended: ' + conn.end : ''));
      lad.appendChild(ch);
      var lastG = 0;
      conn.steps.forEach(function (s, i) {
        // The connection's opening note says what its header says.
        if (i === 0 && s.k === 'n' && s.x.indexOf('connection from ') === 0) return;
        if (s.g && s.g !== lastG) lad.appendChild(groupHead(conn.steps, s.g));
        lastG = s.g || 0;
        lad.appendChild(stepRow(s, conn.at));
      });
      if (conn.dropped) {
        lad.appendChild(el('p', { class: 'empty' }, conn.dropped + ' more transcript lines were not kept.'));
      }
    });
    return el('div', { class: 'ladder-wrap' }, [lad, logBox(a.log, c.mta + ' log')]);
  }

  function caseDetails(c) {
    var rows = [];
    function item(k, v) { if (v) rows.push(el('dt', null, k), el('dd', null, v)); }
    item('expected', c.expected.join(' → '));
    if (c.failure) item('failed', el('strong', { class: 'alert' }, c.failure));
    item('findings', c.findings.join('; '));
    item(c.mta, c.version + ' (' + c.image + ')');
    return el('dl', { class: 'details' }, rows);
  }

  function caseView(c, heading) {
    var box = el('section', { class: 'case', 'data-key': c.key });
    box.appendChild(el(heading || 'h2', null, [
      el('span', { class: 'mark m-' + c.mark, title: MARK_TITLE[c.mark] }, MARK[c.mark]), ' ', c.title, ' ', chip(c)]));
    if (c.name && D.kind === 'run') box.appendChild(el('p', { class: 'name' }, c.name));
    box.appendChild(caseDetails(c));
    c.attempts.forEach(function (a, i) {
      box.appendChild(el('h3', null, [
        c.attempts.length > 1 ? 'attempt ' + (i + 1) + ' of ' + c.attempts.length + ': ' : 'the attempt: ',
        el('span', { class: 'chip c-' + a.cat }, a.cell), ' ', a.summary]));
      box.appendChild(ladder(c, a));
    });
    if (c.log && c.log.length) box.appendChild(logBox(c.log, c.mta + ' log about the message'));
    return box;
  }

  // ---- check ----

  function verdictTable(t) {
    var cp = D.check;
    var head = ['scenario', 'current'].concat(cp.with_candidate ? ['candidate', 'verdict', 'why'] : []);
    var body = el('tbody');
    t.rows.forEach(function (r) {
      var cur = D.cases[r.current];
      var cand = r.candidate === undefined ? null : D.cases[r.candidate];
      var tr = el('tr', { class: 'vrow' + (r.gates ? ' gates' : ''), 'data-key': r.key, 'data-verdict': r.vclass || null }, [
        el('th', { class: 'scn' }, el('a', { href: '#' + encodeURI(r.key) }, r.scenario)),
        el('td', { class: 'cell c-' + cur.cat + (cur.intercepted ? ' icpt' : '') }, el('a', { href: '#' + encodeURI(r.key) }, cur.cell + (cur.dsn && cur.cell.indexOf(cur.dsn) < 0 ? ' ' + cur.dsn : '')))
      ]);
      if (cp.with_candidate) {
        tr.appendChild(cand ? el('td', { class: 'cell c-' + cand.cat + (cand.intercepted ? ' icpt' : '') }, el('a', { href: '#' + encodeURI(r.key) }, cand.cell + (cand.dsn && cand.cell.indexOf(cand.dsn) < 0 ? ' ' + cand.dsn : ''))) : el('td'));
        tr.appendChild(el('td', { class: 'verdict v-' + (r.vclass || 'none') }, r.verdict || ''));
        tr.appendChild(el('td', { class: 'why' }, r.why || ''));
      }
      body.appendChild(tr);
    });
    return el('table', { class: 'verdicts' }, [el('thead', null, el('tr', null, head.map(function (h) { return el('th', null, h); }))), body]);
  }

  function pairView(r, heading) {
    var box = el('section', { class: 'pair', 'data-key': r.key, 'data-verdict': r.vclass || null });
    box.appendChild(el(heading || 'h2', null, [r.scenario, ' ',
      r.verdict ? el('span', { class: 'verdict v-' + r.vclass }, r.verdict) : null]));
    if (r.why) box.appendChild(el('p', { class: 'why' }, r.why));
    var sides = el('div', { class: 'sides' });
    sides.appendChild(caseView(D.cases[r.current], 'h3'));
    if (r.candidate !== undefined) sides.appendChild(caseView(D.cases[r.candidate], 'h3'));
    box.appendChild(sides);
    return box;
  }

  function checkPage() {
    var cp = D.check;
    add(app, el('ul', { class: 'facts' }, cp.sources.map(function (s) { return el('li', null, s[0] + ': ' + s[1]); })));
    if (cp.with_candidate) {
      add(app, el('h2', null, 'What the candidate changes'));
      add(app, el('ul', { class: 'diff' }, cp.diff.length ? cp.diff.map(function (d) { return el('li', null, el('code', null, d)); })
        : el('li', null, 'main.cf: both sides set the same parameters')));
    }
    cp.changes.forEach(function (c) {
      add(app, el('details', { class: 'changes' }, [el('summary', null, 'What the harness changed in the ' + c[0] + ' configuration to run it here'),
        el('ul', null, c[1].map(function (x) { return el('li', null, x); }))]));
    });
    cp.images.forEach(function (t) {
      add(app, el('h2', null, 'Postfix ' + t.version + ' (' + t.image + ')'));
      add(app, verdictTable(t));
    });
    var changed = [];
    cp.images.forEach(function (t) { t.rows.forEach(function (r) { if (r.vclass && r.vclass !== 'same') changed.push(r); }); });
    if (cp.with_candidate) {
      add(app, el('h2', null, changed.length ? 'Changed paths: both sides' : 'No path changed'));
      changed.forEach(function (r) { add(app, pairView(r, 'h3')); });
    }
  }

  // ---- opening a case ----

  var overlay = el('div', { id: 'overlay', hidden: true, onclick: function (e) { if (e.target === overlay) close(); } });
  var panel = el('div', { class: 'panel', role: 'dialog', 'aria-modal': 'true' });
  overlay.appendChild(panel);
  var opened = null;

  function close() {
    if (location.hash) history.pushState(null, '', location.pathname + location.search);
    show();
  }

  function find(key) {
    for (var i = 0; i < D.cases.length; i++) if (D.cases[i].key === key) return { c: D.cases[i] };
    if (D.check) {
      for (var t = 0; t < D.check.images.length; t++) {
        var rows = D.check.images[t].rows;
        for (var j = 0; j < rows.length; j++) if (rows[j].key === key) return { r: rows[j] };
      }
    }
    return null;
  }

  function show() {
    var key = decodeURIComponent(location.hash.slice(1));
    if (opened) opened.classList.remove('open');
    opened = null;
    panel.textContent = '';
    var found = key ? find(key) : null;
    if (!found) {
      overlay.hidden = true;
      document.body.classList.remove('has-overlay');
      if (key) reportError('no case ' + key + ' in this report');
      return;
    }
    panel.appendChild(el('button', { class: 'close', type: 'button', title: 'close (Esc)', onclick: close }, '×'));
    panel.appendChild(found.c ? caseView(found.c) : pairView(found.r));
    opened = cellsByKey[key] || null;
    if (opened) opened.classList.add('open');
    overlay.hidden = false;
    document.body.classList.add('has-overlay');
    panel.scrollTop = 0;
  }

  if (D.kind === 'check') {
    checkPage();
  } else {
    add(app, filters());
    add(app, legend());
    D.tables.forEach(function (t) {
      add(app, el('h2', null, t.title));
      add(app, matrix(t));
    });
  }
  document.body.appendChild(overlay);
  window.addEventListener('hashchange', show);
  document.addEventListener('keydown', function (e) { if (e.key === 'Escape' && !overlay.hidden) close(); });
  show();
  root.dataset.renderMs = (performance.now() - t0).toFixed(1);
  root.dataset.ready = '1';
  window.addEventListener('load', function () {
    root.dataset.loadMs = performance.now().toFixed(1);
  });
})();
