-- depends: 0019.adherence-counts-in-place
-- Whether a patient journey id repeats, as the latest succeeded full run found (and routine
-- runs since, among the ids their changes named): while none does, a routine run looks for
-- copies only among the ids its queued changes name, where a new copy must come from, not
-- among every id its scope reaches (pipeline._prepare_candidates). NULL until a full run looks.
ALTER TABLE pipeline.change_capture_state ADD COLUMN ids_repeat boolean;

COMMENT ON COLUMN pipeline.change_capture_state.ids_repeat IS
    'public.patient_journey only: whether an id repeated when the latest succeeded full run looked, '
    'or a routine run since found a repeated one among the ids its changes named (NULL: not looked).';

-- Its return type grew a column during this release's work; migrate re-creates it.
DROP FUNCTION IF EXISTS pipeline._missing_source_indexes();
