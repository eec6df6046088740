-- Change marks: the transaction that last wrote each registry and presence row, so the
-- alerting time pass reads only what changed since its previous pass (alerting/tick.py).
--
-- A transaction id, not a time: a reader keeps what its snapshot could not see (the
-- transactions running then, and every id from its xmax on) and next reads the rows marked
-- with one of those. A row written by a transaction that commits after the read began is
-- read next time however long its writer stayed open; a clock stamp (now() is when the
-- writer began) can fall behind a watermark and be missed. xid8 is 64 bits: no wraparound,
-- and it orders.
--
-- A trigger stamps every writer alike (ingest, the registry, imports, tests). Rows written
-- before this migration keep NULL: the pass's full reads (the first, and one at an
-- interval) take every row, marked or not. Presence gets no index on the mark, so ingest's
-- upserts stay HOT (a scan of the narrow presence table is cheap); the registry, written
-- rarely, gets one.

CREATE FUNCTION village_mark_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.changed_xid := pg_current_xact_id();
    RETURN NEW;
END
$$;

ALTER TABLE devices ADD COLUMN changed_xid xid8;
CREATE INDEX devices_changed_xid ON devices (changed_xid);
CREATE TRIGGER devices_mark_change BEFORE INSERT OR UPDATE ON devices
    FOR EACH ROW EXECUTE FUNCTION village_mark_change();

ALTER TABLE device_presence ADD COLUMN changed_xid xid8;
CREATE TRIGGER device_presence_mark_change BEFORE INSERT OR UPDATE ON device_presence
    FOR EACH ROW EXECUTE FUNCTION village_mark_change();
