-- The clinic pseudonyms the aggregate tables show (clinic_code only: which clinic is which is not
-- published). Published (aggregate tier).
select distinct clinic_code
from {{ ref('int_clinics') }}
