"""SQL functions the PostgreSQL export path uses to write cells exactly as Python's writer does
(oversight.export_sql). PostgreSQL only: a no-op elsewhere (SQLite keeps the Python writer).

- oversight_float_repr(float8): Python's repr() of the same float. PostgreSQL (with
  extra_float_digits >= 1, its default, which the export sets) prints the shortest digits that
  read back exactly, as Python does, and in the same exponent form ("1e-05", "1.5e+20"), but
  in fixed notation for decimal exponents -4..14 where Python goes to 15, without ".0" on
  integral values, with every digit of integral values from 1e16 to 2^64 (not the fewest),
  and spells the specials its own way: all of which this rewrites.
- oversight_csv(text): a field as Python's csv module (QUOTE_MINIMAL, excel dialect) writes it.
- oversight_json_number(jsonb): a JSON number as Python reads it (orjson/json: an integer when
  its text has no fraction, else a float) and prints it (str or repr). jsonb prints numbers
  without exponents, so "has a '.'" is "is a float" here. A decimal too small for a double
  reads as 0.0 (or -0.0), as in Python, where PostgreSQL's cast would refuse it.
- oversight_canonical_json(jsonb): audit.canonical.canonical_json() of the value Python reads
  from the same JSON (sorted keys by code point, no whitespace, floats as repr).
- oversight_json_cell(jsonb), oversight_json_cell_of(type, text, jsonb): a flat CSV cell of a feature (exports._flat): text as is,
  numbers as Python prints them, True/False, nothing for null, nested values as canonical JSON.

The SQL-language ones are single expressions, IMMUTABLE and not STRICT (each gives NULL for
NULL by itself) so that the planner inlines them into the export's query: a call of a
non-inlined SQL function per cell costs tens of microseconds.
"""

from django.db import migrations

FUNCTIONS = r"""
CREATE OR REPLACE FUNCTION oversight_float_wide(t text) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
-- PostgreSQL prints integral doubles between 1e16 and 2^64 with all their digits; Python's repr
-- prints the fewest digits that read back as the same double (the nearest such number).
DECLARE
  x double precision := t::double precision;
  d numeric := t::numeric;
  e int := split_part(t, 'e', 2)::int;
  c numeric;
  digits text;
BEGIN
  FOR p IN 1..17 LOOP
    c := round(d, p - 1 - e);
    EXIT WHEN c::double precision = x;
  END LOOP;
  digits := abs(c)::text;
  e := length(digits) - 1;
  digits := rtrim(digits, '0');
  RETURN (CASE WHEN c < 0 THEN '-' ELSE '' END) || left(digits, 1)
    || (CASE WHEN length(digits) > 1 THEN '.' || substr(digits, 2) ELSE '' END)
    || 'e+' || e;
END
$$;

CREATE OR REPLACE FUNCTION oversight_float_text(t text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
SELECT CASE
  WHEN strpos(t, 'e') > 0 THEN
    CASE WHEN split_part(t, 'e', 2) IN ('+16', '+17', '+18', '+19') THEN oversight_float_wide(t)
    WHEN split_part(t, 'e', 2) <> '+15' THEN t
    ELSE (CASE WHEN left(t, 1) = '-' THEN '-' ELSE '' END)
      || CASE
           WHEN length(replace(replace(split_part(t, 'e', 1), '-', ''), '.', '')) <= 16
           THEN rpad(replace(replace(split_part(t, 'e', 1), '-', ''), '.', ''), 16, '0') || '.0'
           ELSE substr(replace(replace(split_part(t, 'e', 1), '-', ''), '.', ''), 1, 16) || '.'
             || substr(replace(replace(split_part(t, 'e', 1), '-', ''), '.', ''), 17)
         END
    END
  WHEN strpos(t, '.') > 0 THEN t
  WHEN t = 'NaN' THEN 'nan'
  WHEN t = 'Infinity' THEN 'inf'
  WHEN t = '-Infinity' THEN '-inf'
  ELSE t || '.0'
END
$$;

CREATE OR REPLACE FUNCTION oversight_float_repr(x double precision) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
-- Most floats print once: integral ones below 1e15 (and +-0) as digits, fixed notation
-- between 1e-4 and 1e15 as PostgreSQL prints them; the rest are rewritten from the text.
SELECT CASE
  WHEN abs(x) < 1e15 AND x = trunc(x) THEN x::text || '.0'
  WHEN abs(x) < 1e15 AND abs(x) >= 1e-4 THEN x::text
  ELSE oversight_float_text(x::text)
END
$$;

CREATE OR REPLACE FUNCTION oversight_csv(t text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
SELECT CASE WHEN t ~ '[",\r\n]' THEN '"' || replace(t, '"', '""') || '"' ELSE t END
$$;

CREATE OR REPLACE FUNCTION oversight_tiny_float(n numeric) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
-- A decimal near zero: a subnormal double, or one PostgreSQL refuses (it underflows to zero),
-- which Python reads as 0.0 (or -0.0).
BEGIN
  RETURN oversight_float_repr(n::double precision);
EXCEPTION WHEN numeric_value_out_of_range THEN
  RETURN CASE WHEN n < 0 THEN '-0.0' ELSE '0.0' END;
END
$$;

CREATE OR REPLACE FUNCTION oversight_json_number_text(t text, v jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
-- t: the number's text (v::text), made once by the caller.
SELECT CASE WHEN strpos(t, '.') = 0 THEN t
            -- At most 15 digits, 1e-3 or more, under 1e15: the double read from it prints as
            -- these digits (fewer digits would be another decimal, hence another double),
            -- without the fraction's trailing zeros, in fixed notation. No double made here.
            WHEN length(t) <= 16 AND left(t, 5) <> '0.000' AND left(t, 6) <> '-0.000'
            THEN rtrim(t, '0') || CASE WHEN right(rtrim(t, '0'), 1) = '.' THEN '0' ELSE '' END
            -- below 1e-300 a decimal's text is over 300 characters long
            WHEN length(t) < 300 OR abs(v::numeric) >= 1e-300 OR v::numeric = 0
            THEN oversight_float_repr(v::double precision)
            ELSE oversight_tiny_float(v::numeric) END
$$;

CREATE OR REPLACE FUNCTION oversight_json_number(v jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
SELECT oversight_json_number_text(v::text, v)
$$;

CREATE OR REPLACE FUNCTION oversight_canonical_json(v jsonb) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
  CASE jsonb_typeof(v)
    WHEN 'object' THEN
      RETURN '{' || coalesce((
        SELECT string_agg(to_json(k)::text || ':' || oversight_canonical_json(e), ','
                          ORDER BY k COLLATE "C")
        FROM jsonb_each(v) AS t(k, e)), '') || '}';
    WHEN 'array' THEN
      RETURN '[' || coalesce((
        SELECT string_agg(oversight_canonical_json(e), ',' ORDER BY n)
        FROM jsonb_array_elements(v) WITH ORDINALITY AS t(e, n)), '') || ']';
    WHEN 'number' THEN RETURN oversight_json_number(v);
    WHEN 'string' THEN RETURN to_json(v #>> '{}')::text;
    ELSE RETURN v::text;  -- true, false, null
  END CASE;
END
$$;

CREATE OR REPLACE FUNCTION oversight_json_cell_of(k text, t text, v jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
-- k, t: jsonb_typeof(v) and v::text, made once by the caller.
SELECT CASE k
  WHEN 'string' THEN oversight_csv(v #>> '{}')
  WHEN 'number' THEN oversight_json_number_text(t, v)
  WHEN 'boolean' THEN CASE WHEN t = 'true' THEN 'True' ELSE 'False' END
  WHEN 'null' THEN NULL
  ELSE oversight_csv(oversight_canonical_json(v))
END
$$;

CREATE OR REPLACE FUNCTION oversight_json_cell(v jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
SELECT oversight_json_cell_of(jsonb_typeof(v), v::text, v)
$$;
"""

DROP = """
DROP FUNCTION IF EXISTS oversight_json_cell(jsonb);
DROP FUNCTION IF EXISTS oversight_json_cell_of(text, text, jsonb);
DROP FUNCTION IF EXISTS oversight_json_number_text(text, jsonb);
DROP FUNCTION IF EXISTS oversight_canonical_json(jsonb);
DROP FUNCTION IF EXISTS oversight_json_number(jsonb);
DROP FUNCTION IF EXISTS oversight_tiny_float(numeric);
DROP FUNCTION IF EXISTS oversight_csv(text);
DROP FUNCTION IF EXISTS oversight_float_repr(double precision);
DROP FUNCTION IF EXISTS oversight_float_text(text);
DROP FUNCTION IF EXISTS oversight_float_wide(text);
"""


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FUNCTIONS)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("oversight", "0003_breaker_trips")]

    operations = [migrations.RunPython(create, drop)]
