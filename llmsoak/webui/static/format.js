// llmsoak Soak page: number formatting, the JavaScript copy of llmsoak/formatting.py.
// Same rules, same outputs on the same values (tests/webui/test_format_js.py runs both), except a
// missing value, which reads "–" here. Loaded by soak.html before soak.js; node can require() it.
"use strict";

function fmtSig(v, digits) {
  if (v === null || v === undefined || !isFinite(v)) return "–";
  digits = digits || 3;
  if (v === 0) return "0";
  const mag = Math.floor(Math.log10(Math.abs(v)));
  if (mag < -4 || mag >= 9) return v.toExponential(digits - 1);
  let decimals = digits - 1 - mag;
  const step = Math.pow(10, -decimals);
  let rounded = Math.sign(v) * Math.round(Math.abs(v) / step) * step;  // a tie away from zero
  if (rounded !== 0 && Math.floor(Math.log10(Math.abs(rounded))) > mag) decimals -= 1;
  let text = rounded.toFixed(Math.max(decimals, 0));
  if (text.includes(".")) text = text.replace(/0+$/, "").replace(/\.$/, "");
  return text === "-0" ? "0" : text;
}
function fmtBytes(n) {
  if (n === null || n === undefined || !isFinite(n)) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let i = 0, v = Math.abs(n);
  while (Math.round(v) >= 1000 && i < units.length - 1) { v /= 1024; i++; }
  const text = i === 0 ? v.toFixed(0) : fmtSig(v);
  return (n < 0 && text !== "0" ? "-" : "") + text + " " + units[i];
}
function fmtNum(v, digits) {
  if (v === null || v === undefined || !isFinite(v)) return "–";
  return Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(digits === undefined ? 1 : digits);
}
function fmtPct(v) {  // growth in % of the level per hour, signed
  if (v === null || v === undefined || !isFinite(v)) return "–";
  const text = fmtSig(v);
  return (text.startsWith("-") || text === "0" ? "" : "+") + text + " %/h";
}
function fmtHours(h) {
  if (h === null || h === undefined || !isFinite(h)) return "–";
  return h >= 72 ? `${fmtSig(h)} h (${fmtSig(h / 24, 2)} days)` : fmtSig(h, h < 10 ? 2 : 3) + " h";
}

if (typeof module !== "undefined") {
  module.exports = { fmtSig, fmtBytes, fmtNum, fmtPct, fmtHours };
}
