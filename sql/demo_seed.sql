-- Demo data for development (`make db`), never for production. Safe to re-run.
-- Passwords (README): admin orchid-lantern-42, alice maple-harbor-17,
-- bob granite-willow-88, carol copper-meadow-55. The hashes are bcrypt over the
-- HMAC pre-hash keyed by the development PASSWORD_PEPPER (config.DEVELOPMENT_SECRET);
-- with another pepper these accounts cannot log in.
-- Service keys (README, Backends), public like the passwords: eqsk_demo_stock_key_not_secret,
-- eqsk_demo_sales_key_not_secret, eqsk_demo_manufacturing_key_not_secret.

insert into auth.services (name, description) values
    ('stock', 'Stock and warehouses'),
    ('sales', 'Orders and invoices'),
    ('manufacturing', 'Production orders')
on conflict (name) do nothing;

insert into auth.permissions (name, description) values
    ('stock.read', 'Read stock'),
    ('stock.write', 'Change stock'),
    ('sales.read', 'Read orders'),
    ('sales.write', 'Create and change orders'),
    ('manufacturing.read', 'Read production orders'),
    ('manufacturing.write', 'Create and change production orders')
on conflict (name) do nothing;

insert into auth.roles (name, description) values
    ('clerk', 'Reads stock'),
    ('seller', 'Sells'),
    ('manager', 'Runs production')
on conflict (name) do nothing;

insert into auth.role_permissions (role_id, permission_id)
select r.id, p.id
from (values ('clerk', 'stock.read'),
             ('seller', 'sales.read'), ('seller', 'sales.write'),
             ('manager', 'manufacturing.read'), ('manager', 'manufacturing.write'))
     as v(role, permission)
join auth.roles r on r.name = v.role
join auth.permissions p on p.name = v.permission
on conflict do nothing;

insert into auth.service_roles (service_id, role_id)
select s.id, r.id
from (values ('stock', 'clerk'), ('sales', 'seller'), ('manufacturing', 'manager')) as v(service, role)
join auth.services s on s.name = v.service
join auth.roles r on r.name = v.role
on conflict do nothing;

insert into auth.users (username, name, email, password_hash, active) values
    ('admin', 'Administrator', null, '$2b$12$PxtEPLDU.P1Gr28al.gfHehQn/42gioDPNC0xkTr11IyiyHdGn.5y', true),
    ('alice', 'Alice', 'alice@example.com', '$2b$12$gh0Wu28nm0gIrfEFrz.ndOr4h22GlV2Vo1tiMHrc0qYYzc.HRYQcS', true),
    ('bob', 'Bob', null, '$2b$12$JWM3RxAlYBYnVrKt5Obzdu/zDccM0mEaLgbrIaP.P438i6XWkealG', true),
    ('carol', 'Carol', null, '$2b$12$FRoZHKcliCIuGJwFxqtBoumIZ7/uXFjjulCT/FhJC20zdaR7fkaNm', false)
on conflict do nothing;

insert into auth.person_service_roles (user_id, service_id, role_id)
select u.id, s.id, r.id
from (values ('admin', 'auth', 'admin'), ('alice', 'stock', 'clerk'),
             ('alice', 'sales', 'seller'), ('bob', 'manufacturing', 'manager')) as v(username, service, role)
join auth.users u on u.username = v.username
join auth.services s on s.name = v.service
join auth.roles r on r.name = v.role
on conflict do nothing;

insert into auth.service_keys (service_id, key_hash, prefix, name)
select s.id, sha256(convert_to(v.secret, 'UTF8')), left(v.secret, 13), v.service || ' key'
from (values ('stock', 'eqsk_demo_stock_key_not_secret'),
             ('sales', 'eqsk_demo_sales_key_not_secret'),
             ('manufacturing', 'eqsk_demo_manufacturing_key_not_secret')) as v(service, secret)
join auth.services s on s.name = v.service
on conflict do nothing;
