/** One line of the benchmark table: a measurement, the baseline it is compared with, and notes. */
export interface Row {
  /** Which part of the suite ('a' … 'e'), for grouping. */
  section: string;
  name: string;
  value?: number;
  unit: string;
  /** What the ratio divides by, with its measured value (same run). */
  baseline?: string;
  /** value ÷ baseline, unless the row says otherwise. */
  ratio?: number;
  /** Fixed reference figures (rtmfp-cpp) and side measurements; never used for the ratio. */
  note?: string;
  /** Set when the measurement failed; the rest of the suite still ran. */
  error?: string;
}

/** A number with as many decimals as its size deserves, thousands grouped. */
export function formatNumber(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const abs = Math.abs(v);
  const digits = abs >= 100 ? 0 : abs >= 10 ? 1 : abs >= 1 ? 2 : 3;
  return v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

const HEADERS = ['', 'benchmark', 'value', 'unit', 'baseline (same run)', 'ratio', 'notes'];
/** Columns whose cells are right-aligned (numbers). */
const RIGHT = new Set([2, 5]);

/** The rows as an aligned markdown table. */
export function formatTable(rows: Row[]): string {
  const cells = rows.map((r) => [
    r.section,
    r.name,
    r.error ? 'FAILED' : r.value === undefined ? '' : formatNumber(r.value),
    r.unit,
    r.baseline ?? '',
    r.ratio === undefined || r.error ? '' : `${formatNumber(r.ratio)}×`,
    r.error ? `error: ${r.error}` : (r.note ?? ''),
  ]);
  const widths = HEADERS.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (c: string[]) =>
    `| ${c.map((s, i) => (RIGHT.has(i) ? s.padStart(widths[i]) : s.padEnd(widths[i]))).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (RIGHT.has(i) ? `${'-'.repeat(w + 1)}:` : '-'.repeat(w + 2))).join('|')}|`;
  return [line(HEADERS), rule, ...cells.map(line)].join('\n');
}
