create schema if not exists auth;
