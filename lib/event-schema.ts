import {
  AMOUNT_EXCLUSIVE_MAXIMUM,
  DEVICE_TYPES,
  EVENT_TIME_PATTERN,
  EVENT_TYPES,
  EVENT_YEARS,
  MAX_DEPTH,
  MAX_FUTURE_MS,
  MAX_RECORD_BYTES,
  PLANS,
  PURCHASE_EVENT_TYPES,
  SCHEMA_VERSION,
  TEXT_LIMITS,
  type TextField,
  USER_EVENT_TYPES,
} from './events';

/**
 * The v1 event contract as a JSON Schema (draft 2020-12), built from the constants lib/events.ts validates with,
 * and published as schema/event.v1.schema.json for producers (`make schema` writes it; a test fails when the file
 * and this differ). Rules a JSON Schema cannot state sit in its description: the raw record's size, UTF-8 and
 * the clock-relative bound on event_time.
 */

export const EVENT_SCHEMA_FILE = 'schema/event.v1.schema.json';
export const EVENT_SCHEMA_ID = 'urn:nightshift:schema:event:v1';

/** Any text PostgreSQL can store: no U+0000 and no lone surrogate (matched as code points, the `u` flag). */
const STORABLE_TEXT = '^[^\\u0000\\uD800-\\uDFFF]*$';

type Schema = Record<string, unknown>;

function text(field: TextField, description: string, minLength = 0): Schema {
  return {
    type: 'string',
    ...(minLength > 0 ? { minLength } : {}),
    maxLength: TEXT_LIMITS[field],
    pattern: STORABLE_TEXT,
    description: `${description} At most ${TEXT_LIMITS[field]} characters (code points); no U+0000.`,
  };
}

function nullable(schema: Schema): Schema {
  const { type, ...rest } = schema;
  return { ...rest, type: [type, 'null'] };
}

/** `$defs` name of "any JSON value nested at most `levels` levels deep" (0: a scalar). */
const nested = (levels: number): string => `#/$defs/json_depth_${levels}`;

function depthDefs(): Schema {
  const defs: Schema = { json_depth_0: { type: ['string', 'number', 'boolean', 'null'] } };
  for (let levels = 1; levels < MAX_DEPTH; levels++) {
    defs[`json_depth_${levels}`] = {
      anyOf: [
        { $ref: nested(0) },
        { type: 'object', additionalProperties: { $ref: nested(levels - 1) } },
        { type: 'array', items: { $ref: nested(levels - 1) } },
      ],
    };
  }
  return defs;
}

/** A nested object of the event (level 2): unknown members are allowed up to the depth limit. */
function member(description: string, properties: Schema, required: string[] = []): Schema {
  return {
    type: 'object',
    description,
    properties,
    ...(required.length ? { required } : {}),
    additionalProperties: { $ref: nested(MAX_DEPTH - 2) },
  };
}

const COUNTRY = { type: 'string', pattern: '^[A-Z]{2}$', description: 'ISO 3166-1 alpha-2, upper case, e.g. "DE".' };

export function eventJsonSchema(): Schema {
  const ifType = (types: readonly string[]) => ({
    properties: { event_type: { enum: [...types] } },
    required: ['event_type'],
  });
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: EVENT_SCHEMA_ID,
    title: `Nightshift product event ${SCHEMA_VERSION}`,
    description:
      `One Kafka record value on the events topic, keyed by user_id. Also enforced by the landing, beyond what a ` +
      `JSON Schema states: the record is at most ${MAX_RECORD_BYTES} bytes of UTF-8; event_time is at most ` +
      `${MAX_FUTURE_MS / 3_600_000} hours ahead of the landing's clock. A record that breaks a rule is ` +
      `dead-lettered with the reason. Unknown members are ignored (nesting at most ${MAX_DEPTH} levels, the record ` +
      `being level 1).`,
    type: 'object',
    required: ['schema_version', 'event_id', 'event_type', 'event_time', 'user_id'],
    properties: {
      schema_version: { const: SCHEMA_VERSION },
      event_id: {
        type: 'string',
        pattern: '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$',
        description: 'UUID, the idempotency key; stored in lower case.',
      },
      event_type: { enum: [...EVENT_TYPES] },
      event_time: {
        type: 'string',
        pattern: EVENT_TIME_PATTERN,
        description:
          `ISO-8601 with an offset ("Z" or ±HH:MM), seconds and up to 9 fractional digits optional; the year ` +
          `${EVENT_YEARS.min}–${EVENT_YEARS.max}; normalised to UTC, kept to the microsecond.`,
      },
      user_id: text('user_id', 'The user; the Kafka key.', 1),
      session_id: nullable(text('session_id', 'The session.')),
      device: nullable(
        member(
          'The device, optional.',
          {
            type: { enum: [...DEVICE_TYPES] },
            os: nullable(text('device.os', 'Operating system.')),
            browser: nullable(text('device.browser', 'Browser.')),
          },
          ['type'],
        ),
      ),
      context: nullable(
        member('Where the event happened, optional.', {
          country: nullable(COUNTRY),
          page: nullable(text('context.page', 'Page.')),
          referrer: nullable(text('context.referrer', 'Referrer.')),
        }),
      ),
      user: nullable(
        member(
          `The user's full attributes after the event; required on ${USER_EVENT_TYPES.join(', ')}.`,
          {
            email: {
              type: 'string',
              maxLength: TEXT_LIMITS['user.email'],
              pattern: '^[^\\s@\\u0000\\uD800-\\uDFFF]+@[^\\s@\\u0000\\uD800-\\uDFFF]+$',
              description: `An email address (something@somewhere). At most ${TEXT_LIMITS['user.email']} characters.`,
            },
            plan: { enum: [...PLANS] },
            country: COUNTRY,
          },
          ['email', 'plan', 'country'],
        ),
      ),
      purchase: nullable(
        member(
          `The order; required on ${PURCHASE_EVENT_TYPES.join(', ')}.`,
          {
            order_id: text('purchase.order_id', 'The order.', 1),
            product_id: text('purchase.product_id', 'The product.', 1),
            amount: {
              type: 'number',
              minimum: 0,
              exclusiveMaximum: AMOUNT_EXCLUSIVE_MAXIMUM,
              description:
                'Stored as numeric(14,2): its shortest decimal form rounded half away from zero to 2 decimals ' +
                '(1.005 → 1.01), so at most 999999999999.99.',
            },
            currency: {
              type: 'string',
              pattern: '^[A-Z]{3}$',
              description: 'ISO-4217 code in upper case, e.g. "EUR"; lower case is rejected, not converted.',
            },
          },
          ['order_id', 'product_id', 'amount', 'currency'],
        ),
      ),
    },
    additionalProperties: { $ref: nested(MAX_DEPTH - 1) },
    allOf: [
      { if: ifType(USER_EVENT_TYPES), then: { required: ['user'], properties: { user: { type: 'object' } } } },
      {
        if: ifType(PURCHASE_EVENT_TYPES),
        then: { required: ['purchase'], properties: { purchase: { type: 'object' } } },
      },
    ],
    $defs: depthDefs(),
  };
}

/** The schema file's text: the schema formatted as the repository's prettier formats JSON. */
export async function eventSchemaFileText(): Promise<string> {
  const prettier = await import('prettier');
  const options = (await prettier.resolveConfig(EVENT_SCHEMA_FILE)) ?? {};
  return prettier.format(JSON.stringify(eventJsonSchema()), { ...options, parser: 'json' });
}
