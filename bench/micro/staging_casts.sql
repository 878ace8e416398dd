-- What the server spends casting a staged batch's typed columns (issue 12, "typed staging"): 5,000
-- rows of the columns the example's lead entity binds typed (two timestamps, two bigints — the score
-- and the version — and the tombstone flag), unnested from text[] and cast, against the same values
-- unnested from typed arrays, and the text unnested without casts. Milliseconds per batch, mean of 50.
--
--   source .local/env && psql "$LEADSYNC_PG_URL" -q -f bench/micro/staging_casts.sql
--
-- Runs in a DO block on the server alone: no client, no network, no table.
DO $$
DECLARE
  ts_text text[]; ts_typed timestamptz[]; i_text text[]; i_typed bigint[]; b_text text[]; b_typed boolean[];
  started timestamptz; runs int := 50; c bigint;
BEGIN
  SELECT array_agg(to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'), array_agg(t),
         array_agg((g * 7919)::text), array_agg(g * 7919::bigint),
         array_agg(CASE WHEN g % 2 = 0 THEN 't' ELSE 'f' END), array_agg(g % 2 = 0)
    INTO ts_text, ts_typed, i_text, i_typed, b_text, b_typed
    FROM (SELECT g, now() - g * interval '1 minute' AS t FROM generate_series(1, 5000) g) s;

  started := clock_timestamp();
  FOR k IN 1..runs LOOP
    SELECT count(*) INTO c FROM unnest(ts_text, ts_text, i_text, i_text, b_text) AS u(a, b, x, y, z)
     WHERE a::timestamptz IS NOT NULL AND b::timestamptz IS NOT NULL AND x::bigint IS NOT NULL
       AND y::bigint IS NOT NULL AND z::boolean IS NOT NULL;
  END LOOP;
  RAISE NOTICE 'text[], cast:     % ms per 5,000 rows', round(extract(epoch FROM clock_timestamp() - started) * 1000 / runs, 2);

  started := clock_timestamp();
  FOR k IN 1..runs LOOP
    SELECT count(*) INTO c FROM unnest(ts_typed, ts_typed, i_typed, i_typed, b_typed) AS u(a, b, x, y, z)
     WHERE a IS NOT NULL AND b IS NOT NULL AND x IS NOT NULL AND y IS NOT NULL AND z IS NOT NULL;
  END LOOP;
  RAISE NOTICE 'typed arrays:     % ms per 5,000 rows', round(extract(epoch FROM clock_timestamp() - started) * 1000 / runs, 2);

  started := clock_timestamp();
  FOR k IN 1..runs LOOP
    SELECT count(*) INTO c FROM unnest(ts_text, ts_text, i_text, i_text, b_text) AS u(a, b, x, y, z)
     WHERE a IS NOT NULL AND b IS NOT NULL AND x IS NOT NULL AND y IS NOT NULL AND z IS NOT NULL;
  END LOOP;
  RAISE NOTICE 'text[], no cast:  % ms per 5,000 rows', round(extract(epoch FROM clock_timestamp() - started) * 1000 / runs, 2);
END $$;
