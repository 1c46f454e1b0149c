/**
 * @module Calendar windows (a day or a month) in an IANA time zone: when the current one started, when it
 * ends, and a stable id (`2030-01-31`, `2030-01`) to key counters by. The zone's offset is read with
 * Intl.DateTimeFormat, so DST changes make days of 23 or 25 hours as the calendar says. The last window is
 * cached: the formatter runs only when a request crosses into a new window.
 */

export type Period = 'day' | 'month';

export interface CalendarWindow {
  readonly id: string;
  /** Epoch ms of the first instant of the window. */
  readonly start: number;
  /** Epoch ms of the first instant of the next window. */
  readonly end: number;
}

/** Throws RangeError for an unknown zone. */
function formatter(timeZone: string): Intl.DateTimeFormat {
  return new Intl.DateTimeFormat('en-US', {
    timeZone,
    hourCycle: 'h23',
    year: 'numeric',
    month: 'numeric',
    day: 'numeric',
    hour: 'numeric',
    minute: 'numeric',
    second: 'numeric',
  });
}

export function isTimeZone(tz: string): boolean {
  try {
    formatter(tz);
    return true;
  } catch {
    return false;
  }
}

interface Civil {
  y: number;
  m: number;
  d: number;
}

function fields(fmt: Intl.DateTimeFormat, t: number): { civil: Civil; wallMs: number } {
  let y = 0;
  let m = 0;
  let d = 0;
  let h = 0;
  let mi = 0;
  let s = 0;
  for (const p of fmt.formatToParts(t)) {
    if (p.type === 'year') y = Number(p.value);
    else if (p.type === 'month') m = Number(p.value);
    else if (p.type === 'day') d = Number(p.value);
    else if (p.type === 'hour') h = Number(p.value);
    else if (p.type === 'minute') mi = Number(p.value);
    else if (p.type === 'second') s = Number(p.value);
  }
  return { civil: { y, m, d }, wallMs: Date.UTC(y, m - 1, d, h, mi, s) };
}

/** Zone offset (wall clock − UTC) at instant `t`, in ms. */
function offsetAt(fmt: Intl.DateTimeFormat, t: number): number {
  const whole = Math.floor(t / 1000) * 1000;
  return fields(fmt, whole).wallMs - whole;
}

/** The instant the zone's wall clock shows y-m-d 00:00 (month and day may overflow; Date.UTC normalises). */
function midnight(fmt: Intl.DateTimeFormat, y: number, m: number, d: number): number {
  const wall = Date.UTC(y, m - 1, d);
  const first = wall - offsetAt(fmt, wall);
  // The offset at the guess can differ from the offset at the answer across a DST change: correct once.
  return wall - offsetAt(fmt, first);
}

const pad = (n: number): string => (n < 10 ? '0' + n : String(n));

/** The window containing `now`. */
export function windowAt(fmt: Intl.DateTimeFormat, period: Period, now: number): CalendarWindow {
  const { y, m, d } = fields(fmt, now).civil;
  if (period === 'day') {
    return { id: `${y}-${pad(m)}-${pad(d)}`, start: midnight(fmt, y, m, d), end: midnight(fmt, y, m, d + 1) };
  }
  return { id: `${y}-${pad(m)}`, start: midnight(fmt, y, m, 1), end: midnight(fmt, y, m + 1, 1) };
}

/** A function from an instant to its window, caching the last window. */
export function createCalendar(period: Period, timeZone: string): (now: number) => CalendarWindow {
  const fmt = formatter(timeZone);
  let last: CalendarWindow | undefined;
  return (now) => {
    if (last === undefined || now < last.start || now >= last.end) last = windowAt(fmt, period, now);
    return last;
  };
}
