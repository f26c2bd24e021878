import { addDays } from './temporal';

/**
 * The volume check's verdict against a robust, seasonal baseline (SPEC section 6).
 *
 * - Seasonal: the same weekday over the last `volumeWeeks` weeks, when at least `volumeMinWeeks` of them are usable.
 *   Centre = median, spread = 1.4826 × median absolute deviation (a robust standard deviation); the band is the centre
 *   ± the widest of `volumeMadK` spreads, `volumeMinBand` of the centre and `volumeFloorRows`.
 * - Trailing (until the weeks allow it): the days of the same kind (weekday or weekend, the bulk of a weekly rhythm) in
 *   the last 14 days; centre = median, band ± the widest of `volumeTolerance` of the centre, `volumeMadK` spreads and
 *   `volumeFloorRows`.
 * - Warm-up: fewer than `volumeMinHistoryDays` usable days in the last 7, or no day of the same kind, and the check is
 *   skipped.
 *
 * A day is usable when it has rows and its own volume was not judged anomalous (its latest volume check failed):
 * an incident or a holiday spike does not widen the band afterwards, and a day that failed another check (dead
 * letters, say) still counts.
 */

export interface VolumeConfig {
  /** Trailing-days band: allowed relative deviation from the median. DQ_VOLUME_TOLERANCE, default 0.2. */
  volumeTolerance: number;
  /** Warm-up: usable days among the last 7 needed for any verdict. DQ_VOLUME_MIN_HISTORY_DAYS, default 3. */
  volumeMinHistoryDays: number;
  /** Same-weekday history looked at, in weeks. DQ_VOLUME_WEEKS, default 8. */
  volumeWeeks: number;
  /** Same-weekday days needed for the seasonal baseline. DQ_VOLUME_MIN_WEEKS, default 3. */
  volumeMinWeeks: number;
  /** Band half-width in robust standard deviations (1.4826 × MAD). DQ_VOLUME_MAD_K, default 4. */
  volumeMadK: number;
  /** Seasonal band: at least this share of the median either side. DQ_VOLUME_MIN_BAND, default 0.1. */
  volumeMinBand: number;
  /** Changes smaller than this many rows never alert. DQ_VOLUME_FLOOR_ROWS, default 100. */
  volumeFloorRows: number;
}

export interface VolumeDay {
  date: string;
  rows: number;
  /** The day's own latest volume check failed: its volume was anomalous. */
  anomalous: boolean;
}

export interface VolumeVerdict {
  ok: boolean | 'skip';
  observed: number | null;
  threshold: string;
  details: string;
}

const MAD_SCALE = 1.4826;

export function median(values: number[]): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

export function medianAbsoluteDeviation(values: number[]): number {
  const m = median(values);
  return median(values.map((v) => Math.abs(v - m)));
}

const isWeekend = (date: string): boolean => {
  const day = new Date(`${date}T00:00:00Z`).getUTCDay();
  return day === 0 || day === 6;
};

const pct = (ratio: number): string => `${(ratio * 100).toFixed(1).replace(/\.0$/, '')} %`;

/** Days of history the volume check needs: the seasonal window. */
export function volumeHistoryDays(config: VolumeConfig): number {
  return Math.max(7 * config.volumeWeeks, 14);
}

export function judgeVolume(days: VolumeDay[], date: string, config: VolumeConfig): VolumeVerdict {
  const rows = Number(days.find((d) => d.date === date)?.rows ?? 0);
  const history = days.filter((d) => d.date < date && Number(d.rows) > 0);
  const leftOut = history.filter((d) => d.anomalous).map((d) => d.date);
  const usable = history.filter((d) => !d.anomalous).map((d) => ({ date: d.date, rows: Number(d.rows) }));
  const leftOutNote = leftOut.length ? `; left out as anomalous: ${leftOut.join(', ')}` : '';

  const weeks = Array.from({ length: config.volumeWeeks }, (_, i) => addDays(date, -7 * (i + 1)));
  const sameWeekday = usable.filter((d) => weeks.includes(d.date));
  const lastWeek = usable.filter((d) => d.date >= addDays(date, -7));
  const sameKind = usable.filter((d) => d.date >= addDays(date, -14) && isWeekend(d.date) === isWeekend(date));
  const kind = isWeekend(date) ? 'weekend' : 'weekday';

  let basis: typeof usable;
  let label: string;
  let relative: number;
  if (sameWeekday.length >= config.volumeMinWeeks) {
    basis = sameWeekday;
    label = `same weekday, last ${config.volumeWeeks} weeks`;
    relative = config.volumeMinBand;
  } else if (lastWeek.length >= config.volumeMinHistoryDays && sameKind.length > 0) {
    basis = sameKind;
    label = `trailing ${kind}s, last 14 days`;
    relative = config.volumeTolerance;
  } else {
    return {
      ok: 'skip',
      observed: rows,
      threshold: `warm-up: needs ${config.volumeMinHistoryDays} usable days in the last 7 and one ${kind} in the last 14`,
      details: `only ${lastWeek.length} usable days in the last 7, ${sameKind.length} ${kind}s in the last 14${leftOutNote}`,
    };
  }
  const values = basis.map((d) => d.rows);
  const centre = median(values);
  const spread = MAD_SCALE * medianAbsoluteDeviation(values);
  // the band's half-width: the widest of the robust spread, the relative minimum and the absolute floor
  const [half, why] = [
    [config.volumeMadK * spread, `${config.volumeMadK} × robust sd ${Math.round(spread)}`] as const,
    [relative * centre, `± ${pct(relative)}`] as const,
    [config.volumeFloorRows, `floor ${config.volumeFloorRows} rows`] as const,
  ].reduce((a, b) => (b[0] > a[0] ? b : a));
  const low = Math.max(0, Math.ceil(centre - half));
  const high = Math.floor(centre + half);
  const deviation = centre ? (rows - centre) / centre : 0;
  return {
    ok: rows >= low && rows <= high,
    observed: rows,
    threshold: `${low}–${high} (median ${Math.round(centre)} ± ${Math.round(half)}: ${why}; ${label})`,
    details:
      `${rows} rows, ${deviation >= 0 ? '+' : ''}${(deviation * 100).toFixed(1)} % against the median of ${basis.length} days ` +
      `(${label}: ${basis.map((d) => d.date).join(', ')})${leftOutNote}`,
  };
}
