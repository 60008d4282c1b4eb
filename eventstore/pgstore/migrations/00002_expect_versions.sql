-- +goose Up
-- The one-round-trip append (store.go, commitOptimistic) checks every
-- expected version inside the same pipeline as its inserts, under the head
-- lock: a mismatch must abort the transaction, which only an error does.
-- wants[i] < 0 means "any version". Returns the current versions, in order.
-- +goose StatementBegin
CREATE FUNCTION eventstore.expect_versions(streams text[], wants bigint[]) RETURNS bigint[]
LANGUAGE plpgsql AS $$
DECLARE
    cur bigint[];
BEGIN
    SELECT coalesce(array_agg(coalesce(st.version, 0) ORDER BY u.i), '{}')
      INTO cur
      FROM unnest(streams, wants) WITH ORDINALITY AS u(s, w, i)
      LEFT JOIN eventstore.streams st ON st.stream = u.s;
    FOR i IN 1 .. coalesce(array_length(streams, 1), 0) LOOP
        IF wants[i] >= 0 AND wants[i] <> cur[i] THEN
            RAISE EXCEPTION 'eventstore: % is at version %, not %', streams[i], cur[i], wants[i]
                USING ERRCODE = 'PT409';
        END IF;
    END LOOP;
    RETURN cur;
END;
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION eventstore.expect_versions(text[], bigint[]);
