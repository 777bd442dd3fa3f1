"""oversight_tiny_float without an EXCEPTION block, so that it is truly PARALLEL SAFE.

PostgreSQL runs a query's expressions in parallel workers when the plan is parallel, and a
PL/pgSQL EXCEPTION block (a subtransaction) cannot run there ("cannot start subtransactions
during a parallel operation"): an export of a large table, planned in parallel, failed on a
decimal too small for a double. The function now decides underflow by comparing with 2^-1075,
written out exactly: PostgreSQL's cast refuses a decimal that rounds to zero (|n| <= 2^-1075,
the halfway case rounding to even, zero), and Python reads it as 0.0 (or -0.0); any larger
decimal reads as a double (subnormal or not) both ways.
"""

from django.db import migrations

# 2^-1075, half the smallest subnormal double, as an exact decimal (1,075 places).
HALF_SMALLEST = "0." + str(5**1075).rjust(1075, "0")

FUNCTION = f"""
DROP FUNCTION IF EXISTS oversight_tiny_float(numeric);
CREATE FUNCTION oversight_tiny_float(n numeric) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
-- A decimal near zero: a subnormal double, or one that rounds to zero, which PostgreSQL's cast
-- refuses and Python reads as 0.0 (or -0.0).
SELECT CASE WHEN abs(n) <= {HALF_SMALLEST}::numeric
            THEN CASE WHEN n < 0 THEN '-0.0' ELSE '0.0' END
            ELSE oversight_float_repr(n::double precision) END
$$;
"""

PREVIOUS = r"""
DROP FUNCTION IF EXISTS oversight_tiny_float(numeric);
CREATE FUNCTION oversight_tiny_float(n numeric) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
  RETURN oversight_float_repr(n::double precision);
EXCEPTION WHEN numeric_value_out_of_range THEN
  RETURN CASE WHEN n < 0 THEN '-0.0' ELSE '0.0' END;
END
$$;
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FUNCTION)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PREVIOUS)


class Migration(migrations.Migration):
    dependencies = [("oversight", "0004_export_sql_functions")]

    operations = [migrations.RunPython(forward, backward)]
