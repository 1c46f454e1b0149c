/**
 * @module The JSON Schema `format`s the validate policy knows (ajv-formats is not a dependency). Any other
 * format is a config error, so a schema never silently skips a check it asks for.
 */
import { isIPv4, isIPv6 } from 'node:net';
import type { Format } from 'ajv';

const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const TIME = /^([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d+)?(z|[+-]([01]\d|2[0-3]):[0-5]\d)$/i;
const DAYS = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function isDate(text: string): boolean {
  const m = DATE.exec(text);
  if (m === null) return false;
  const year = Number(m[1]);
  const month = Number(m[2]);
  const day = Number(m[3]);
  if (month < 1 || month > 12 || day < 1) return false;
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  return day <= (month === 2 && !leap ? 28 : DAYS[month - 1]!);
}

function isDateTime(text: string): boolean {
  const t = text.search(/[tT ]/);
  return t === 10 && isDate(text.slice(0, 10)) && TIME.test(text.slice(11));
}

export const FORMATS: Readonly<Record<string, Format>> = {
  date: isDate,
  time: TIME,
  'date-time': isDateTime,
  email: /^[^\s@]+@[^\s@.]+(\.[^\s@.]+)+$/,
  uuid: /^(urn:uuid:)?[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i,
  uri: (text: string) => /^[a-z][a-z0-9+.-]*:/i.test(text) && URL.canParse(text),
  ipv4: (text: string) => isIPv4(text),
  ipv6: (text: string) => isIPv6(text),
  hostname: /^(?=.{1,253}\.?$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[-0-9a-z]{0,61}[0-9a-z])?)*\.?$/i,
};
