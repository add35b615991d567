-- depends: 0016.adherence-groups
-- pipeline._mark_held_back_windows gains p_table_was_empty (a first load marks only the pairs
-- held back for their patient journey's row); migrate re-creates it with both arguments.
DROP FUNCTION IF EXISTS pipeline._mark_held_back_windows(boolean);
