-- Payroll, the MariaDB/MySQL flavour of payroll.sql: the same tables, columns, keys
-- and constraint names, for the SQL adapter on MySQL or MariaDB (docs/sql-adapter.md).
--
-- The tables are created in the current database:
--   mariadb -e 'CREATE DATABASE payroll' && mariadb payroll < deploy/sql/payroll-mariadb.sql
--
-- Differences from PostgreSQL, and why:
-- * utf8mb4_bin: compare text exactly, as PostgreSQL does; the adapter puts lower() on
--   both sides where SCIM ignores case (a _ci collation would also make caseExact
--   attributes and the unique login case-insensitive).
-- * DATETIME(6), not TIMESTAMP: no automatic ON UPDATE; the adapter's connections
--   run in UTC (time_zone '+00:00').
-- * MariaDB has no index on an expression such as lower(logon_name): a lookup by
--   userName reads through the unique index only when the column's collation is
--   case-insensitive (see docs/sql-adapter.md, "MySQL and MariaDB").

CREATE TABLE emp_master (
    emp_no      int          NOT NULL AUTO_INCREMENT PRIMARY KEY,
    logon_name  varchar(64)  NOT NULL,
    first_nm    varchar(64),
    last_nm     varchar(64),
    display_nm  varchar(160),
    email_addr  varchar(254),
    email_typ   varchar(16),
    email_desc  varchar(120),
    email_prim  boolean,
    phone_no    varchar(40),
    phone_typ   varchar(16),
    phone_desc  varchar(120),
    phone_prim  boolean,
    job_title   varchar(120),
    dept_nm     varchar(120),
    -- A: active, T: terminated; empty while HR has not decided.
    emp_status  char(1)      DEFAULT 'A',
    hire_dt     date         NOT NULL DEFAULT (curdate()),
    ext_ref     varchar(255),
    crt_ts      datetime(6)  NOT NULL DEFAULT current_timestamp(6),
    upd_ts      datetime(6)  NOT NULL DEFAULT current_timestamp(6),
    CONSTRAINT emp_master_emp_status_check CHECK (emp_status IN ('A', 'T')),
    CONSTRAINT emp_master_logon_name_key UNIQUE (logon_name),
    KEY emp_master_email_ix (email_addr)
) ENGINE=InnoDB AUTO_INCREMENT=100001 DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE org_unit (
    unit_id     int          NOT NULL AUTO_INCREMENT PRIMARY KEY,
    unit_nm     varchar(160) NOT NULL,
    ext_ref     varchar(255),
    crt_ts      datetime(6)  NOT NULL DEFAULT current_timestamp(6),
    upd_ts      datetime(6)  NOT NULL DEFAULT current_timestamp(6),
    CONSTRAINT org_unit_unit_nm_key UNIQUE (unit_nm)
) ENGINE=InnoDB AUTO_INCREMENT=501 DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- No ON DELETE CASCADE: the gateway removes memberships itself, in the same transaction.
CREATE TABLE org_unit_member (
    unit_id     int          NOT NULL,
    emp_no      int          NOT NULL,
    added_ts    datetime(6)  NOT NULL DEFAULT current_timestamp(6),
    PRIMARY KEY (unit_id, emp_no),
    KEY org_unit_member_emp_ix (emp_no),
    CONSTRAINT org_unit_member_unit_fk FOREIGN KEY (unit_id) REFERENCES org_unit (unit_id),
    CONSTRAINT org_unit_member_emp_fk FOREIGN KEY (emp_no) REFERENCES emp_master (emp_no)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
