-- depends: 0016.adherence-groups
-- pipeline._mark_held_back_windows gains p_table_was_empty (after a load into an empty table it
-- marks only the pairs held back for their patient journey's row), and
-- pipeline._upsert_windows the result loaded_into_empty that says so; migrate re-creates both.
DROP FUNCTION IF EXISTS pipeline._mark_held_back_windows(boolean);
DROP FUNCTION IF EXISTS pipeline._upsert_windows(bigint, boolean);
