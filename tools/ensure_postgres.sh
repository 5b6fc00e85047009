#!/usr/bin/env bash
# Make sure a PostgreSQL answers on 127.0.0.1:5432 for the tests (trust auth on
# loopback, database "test"). Uses the one already running; else starts Debian's
# cluster; else installs Debian's postgresql (needs root). Exit 1 if none can be had.
set -euo pipefail

listening() { (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; }

if listening; then
    exit 0
fi
if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "ensure_postgres: installing Debian's postgresql" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >/dev/null
        apt-get install -y -qq postgresql >/dev/null
    else
        echo "ensure_postgres: no PostgreSQL on 127.0.0.1:5432 and no way to install one (need root + apt-get)" >&2
        exit 1
    fi
fi
version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
if [ -z "$version" ]; then
    version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
    pg_createcluster "$version" main >/dev/null
fi
hba=/etc/postgresql/$version/main/pg_hba.conf
if ! grep -q "lucidlink-tests" "$hba"; then
    sed -i '1i host all all 127.0.0.1/32 trust  # lucidlink-tests' "$hba"
fi
pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null \
    || pg_ctlcluster --skip-systemctl-redirect "$version" main reload
for _ in $(seq 1 60); do
    listening && break
    sleep 0.5
done
if ! listening; then
    echo "ensure_postgres: PostgreSQL $version did not start" >&2
    exit 1
fi
if ! su postgres -c "psql -tAc \"SELECT 1 FROM pg_database WHERE datname = 'test'\"" | grep -q 1; then
    su postgres -c "createdb test"
fi
echo "ensure_postgres: PostgreSQL $version on 127.0.0.1:5432" >&2
