-- The backend's user table, created once per database by the profile's setup step.
CREATE TABLE users (
    id serial PRIMARY KEY,
    clerk_user_id text UNIQUE,
    email text,
    first_name text,
    last_name text
);
