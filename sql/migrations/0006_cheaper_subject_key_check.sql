-- The subject-key check, cheaper. PostgreSQL's regex engine spends about 4 us
-- on '^[0-9a-f]{64}$' (the bounded repeat) against about 0.3 us for a length
-- test plus "no character outside the set", and the check runs on every
-- update of a young person, not just the first insert: it was most of the
-- cost of the projector's young_people upserts (docs/performance.md). Same
-- rule: exactly 64 characters, each one of 0-9 a-f.
ALTER TABLE young_people
    DROP CONSTRAINT young_people_subject_key_check,
    ADD CONSTRAINT young_people_subject_key_check
        CHECK (octet_length(subject_key) = 64 AND subject_key !~ '[^0-9a-f]');
