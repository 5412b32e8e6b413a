// The per-node latency chart: p50 and p99 over time, drawn on a <canvas> by hand.
'use strict';

window.ProbeChart = (() => {
  const COLORS = { p50: '#1f6feb', p99: '#e8590c', grid: '#e3e8ef', axis: '#667085' };
  const PAD = { left: 56, right: 16, top: 28, bottom: 28 };

  // A "nice" step for about `count` ticks over `span`.
  function niceStep(span, count) {
    const raw = span / Math.max(count, 1);
    const power = Math.pow(10, Math.floor(Math.log10(raw)));
    const unit = raw / power;
    const nice = unit <= 1 ? 1 : unit <= 2 ? 2 : unit <= 5 ? 5 : 10;
    return nice * power;
  }

  function clock(ms) {
    const d = new Date(ms);
    return [d.getHours(), d.getMinutes(), d.getSeconds()].map((n) => String(n).padStart(2, '0')).join(':');
  }

  // Sizes the canvas backing store to its CSS box, for sharp lines on any pixel ratio.
  function prepare(canvas) {
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth || canvas.width;
    const height = canvas.clientHeight || canvas.height;
    if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
      canvas.width = Math.round(width * ratio);
      canvas.height = Math.round(height * ratio);
    }
    const ctx = canvas.getContext('2d');
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    ctx.font = '11px system-ui, sans-serif';
    return { ctx, width, height };
  }

  function line(ctx, points, color) {
    if (points.length === 0) return;
    ctx.strokeStyle = color;
    ctx.fillStyle = color;
    ctx.lineWidth = 2;
    ctx.beginPath();
    points.forEach(([x, y], i) => (i === 0 ? ctx.moveTo(x, y) : ctx.lineTo(x, y)));
    ctx.stroke();
    if (points.length === 1) {
      ctx.beginPath();
      ctx.arc(points[0][0], points[0][1], 3, 0, Math.PI * 2);
      ctx.fill();
    }
  }

  function legend(ctx, width) {
    let x = width - PAD.right;
    ctx.textAlign = 'right';
    ctx.textBaseline = 'middle';
    for (const [name, color] of [['p99', COLORS.p99], ['p50', COLORS.p50]]) {
      ctx.fillStyle = COLORS.axis;
      ctx.fillText(name, x, 12);
      x -= ctx.measureText(name).width + 6;
      ctx.fillStyle = color;
      ctx.fillRect(x - 14, 11, 14, 3);
      x -= 26;
    }
  }

  // Draws `windows` ([{at_ms, p50_ms, p99_ms}], oldest first); says so when there are none.
  function draw(canvas, windows) {
    const { ctx, width, height } = prepare(canvas);
    const plotW = width - PAD.left - PAD.right;
    const plotH = height - PAD.top - PAD.bottom;
    legend(ctx, width);
    if (!windows || windows.length === 0) {
      ctx.fillStyle = COLORS.axis;
      ctx.textAlign = 'center';
      ctx.textBaseline = 'middle';
      ctx.fillText('no metrics published by this node in the last minutes', width / 2, height / 2);
      return;
    }
    const t0 = windows[0].at_ms;
    const t1 = Math.max(windows[windows.length - 1].at_ms, t0 + 1000);
    const top = Math.max(0.1, ...windows.map((w) => Math.max(w.p50_ms || 0, w.p99_ms || 0))) * 1.1;
    const step = niceStep(top, 4);
    const yMax = Math.ceil(top / step) * step;
    const x = (t) => PAD.left + ((t - t0) / (t1 - t0)) * plotW;
    const y = (v) => PAD.top + plotH - (v / yMax) * plotH;

    ctx.lineWidth = 1;
    ctx.textAlign = 'right';
    ctx.textBaseline = 'middle';
    for (let v = 0; v <= yMax + step / 2; v += step) {
      ctx.strokeStyle = COLORS.grid;
      ctx.beginPath();
      ctx.moveTo(PAD.left, y(v));
      ctx.lineTo(width - PAD.right, y(v));
      ctx.stroke();
      ctx.fillStyle = COLORS.axis;
      ctx.fillText(`${+v.toFixed(3)} ms`, PAD.left - 6, y(v));
    }
    ctx.textAlign = 'center';
    ctx.textBaseline = 'top';
    const ticks = Math.min(6, windows.length);
    for (let i = 0; i < ticks; i++) {
      const t = t0 + ((t1 - t0) * i) / Math.max(ticks - 1, 1);
      ctx.fillText(clock(t), Math.min(Math.max(x(t), PAD.left + 20), width - PAD.right - 20), height - PAD.bottom + 8);
    }
    line(ctx, windows.map((w) => [x(w.at_ms), y(w.p50_ms || 0)]), COLORS.p50);
    line(ctx, windows.map((w) => [x(w.at_ms), y(w.p99_ms || 0)]), COLORS.p99);
  }

  return { draw };
})();
