-- depends: 0001.create-pipeline-schema
-- The grammar's milestones and their initial aliases (slug-grammar.md).
INSERT INTO pipeline.milestone (milestone_slug, date_column) VALUES
    ('operation', 'operation_date'),
    ('appointment', NULL),
    ('invitation', 'invitation_date'),
    ('registration', 'registration_date'),
    ('discharge', 'discharge_date'),
    ('consent', 'consent_date');

INSERT INTO pipeline.milestone_alias (alias, milestone_slug) VALUES
    ('op', 'operation'),
    ('operation', 'operation'),
    ('appt', 'appointment'),
    ('appointment', 'appointment'),
    ('inv', 'invitation'),
    ('invitation', 'invitation'),
    ('reg', 'registration'),
    ('registration', 'registration'),
    ('dis', 'discharge'),
    ('discharge', 'discharge'),
    ('consent', 'consent');
