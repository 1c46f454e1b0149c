/** @module Calendar windows in IANA time zones, including DST days and month ends. */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { createCalendar, isTimeZone } from '../../../../src/gateway/quota/calendar.ts';

it('a day in UTC and in New York', () => {
  const utc = createCalendar('day', 'UTC')(Date.parse('2030-03-05T23:30:00Z'));
  assert.deepEqual(utc, {
    id: '2030-03-05',
    start: Date.parse('2030-03-05T00:00:00Z'),
    end: Date.parse('2030-03-06T00:00:00Z'),
  });
  // 23:30 UTC is 18:30 in New York (EST, UTC-5).
  const ny = createCalendar('day', 'America/New_York')(Date.parse('2030-03-05T23:30:00Z'));
  assert.equal(ny.id, '2030-03-05');
  assert.equal(ny.start, Date.parse('2030-03-05T05:00:00Z'));
  assert.equal(ny.end, Date.parse('2030-03-06T05:00:00Z'));
});

it('DST days last 23 and 25 hours', () => {
  const paris = createCalendar('day', 'Europe/Paris');
  const spring = paris(Date.parse('2030-03-31T12:00:00Z'));
  assert.equal(spring.id, '2030-03-31');
  assert.equal(spring.end - spring.start, 23 * 3_600_000);
  const autumn = paris(Date.parse('2030-10-27T12:00:00Z'));
  assert.equal(autumn.end - autumn.start, 25 * 3_600_000);
});

it('months, including December → January, in Tokyo', () => {
  const tokyo = createCalendar('month', 'Asia/Tokyo');
  // 2030-12-31T16:00Z is 2031-01-01 01:00 in Tokyo.
  const w = tokyo(Date.parse('2030-12-31T16:00:00Z'));
  assert.equal(w.id, '2031-01');
  assert.equal(w.start, Date.parse('2030-12-31T15:00:00Z'));
  assert.equal(w.end, Date.parse('2031-01-31T15:00:00Z'));
  const dec = tokyo(Date.parse('2030-12-31T14:59:59Z'));
  assert.equal(dec.id, '2030-12');
  assert.equal(dec.end, w.start);
});

it('time zone validation', () => {
  assert.equal(isTimeZone('Europe/Paris'), true);
  assert.equal(isTimeZone('Mars/Olympus'), false);
});
