# Shared by dev/bench-up, dev/bench-down, dev/proc and dev/test (sourced, not run).
# Where things live, progress and error lines, and the background processes dev/bench-up
# starts: each runs in its own session, its pid in $RT_RUN/<name>.pid, its output in
# $RT_RUN/<name>.log, so that dev/bench-down stops exactly those and nothing else.

RT_CHECKOUT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RT_HOME="${RT_HOME:-$HOME/.rt-studio}"           # everything dev/bench-up makes lives here
RT_BENCH="$RT_HOME/bench"                        # the Frappe bench
RT_RUN="$RT_HOME/run"                            # pid and log files
RT_STATE="$RT_HOME/state.env"                    # site, users and passwords (kept between runs)
RT_SITE="${RT_SITE:-rt.localhost}"
FRAPPE_REPO="${FRAPPE_REPO:-https://github.com/frappe/frappe}"
FRAPPE_BRANCH="${FRAPPE_BRANCH:-version-15}"
DB_ROOT_PASSWORD="${DB_ROOT_PASSWORD:-root}"
# loopback ports (bench's defaults); set them to run a second bench beside one that has these
RT_WEB_PORT="${RT_WEB_PORT:-8000}" RT_SOCKETIO_PORT="${RT_SOCKETIO_PORT:-9000}"
RT_REDIS_CACHE_PORT="${RT_REDIS_CACHE_PORT:-13000}" RT_REDIS_QUEUE_PORT="${RT_REDIS_QUEUE_PORT:-11000}"
# MariaDB: on 3306 the machine's own server (started from the OS package's datadir if it is not
# running); on any other port a server of this bench alone, its datadir, socket and pid in $RT_DB_DIR
RT_DB_PORT="${RT_DB_PORT:-3306}"
RT_DB_DIR="$RT_HOME/mariadb"
export BENCH_DISABLE_UV=1 PIP_DISABLE_PIP_VERSION_CHECK=1

_t0=$SECONDS
step() { printf '[%4ss] %s\n' "$((SECONDS - _t0))" "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Run as root, or through sudo when we are not.
as_root() {
	if [ "$(id -u)" = 0 ]; then "$@"
	elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo "$@"
	else die "'$*' needs root: run as root or give this user password-less sudo"
	fi
}

# bench itself calls `bench` (e.g. to build after get-app): its CLI goes first on PATH
bench_cmd() { (cd "$RT_BENCH" && PATH="$RT_HOME/cli/bin:$PATH" bench "$@"); }

# True when something listens on 127.0.0.1:$1.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# The pid of our process NAME when it runs, else nothing.
proc_pid() {
	local f="$RT_RUN/$1.pid" pid
	[ -f "$f" ] || return 1
	pid="$(cat "$f")"
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
	# a pid reused by another program after a reboot is not ours
	[ "$(cat "$RT_RUN/$1.cmd" 2>/dev/null)" = "$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" ] || return 1
	echo "$pid"
}

# proc_start NAME DIR PORT CMD...: start CMD in DIR in the background unless it runs already;
# wait for PORT (0 = none) to open. A port held by a process that is not ours is an error.
proc_start() {
	local name="$1" dir="$2" port="$3" pid i
	shift 3
	mkdir -p "$RT_RUN"
	if proc_pid "$name" >/dev/null; then return 0; fi
	if [ "$port" != 0 ] && port_open "$port"; then
		die "port $port ($name) is taken by another program; stop it (e.g. a 'bench start' of this bench) and run again"
	fi
	(cd "$dir" && exec setsid "$@" >>"$RT_RUN/$name.log" 2>&1 </dev/null) &
	pid=$!
	echo "$pid" >"$RT_RUN/$name.pid"
	for i in $(seq 50); do
		[ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" >"$RT_RUN/$name.cmd" && break
		sleep 0.1
	done
	sleep 0.3
	tr '\0' ' ' <"/proc/$pid/cmdline" >"$RT_RUN/$name.cmd" 2>/dev/null
	if [ "$port" != 0 ]; then
		for i in $(seq 120); do
			port_open "$port" && return 0
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.5
		done
		die "$name did not start listening on 127.0.0.1:$port; its log: $RT_RUN/$name.log ($(tail -n 1 "$RT_RUN/$name.log" 2>/dev/null))"
	fi
	kill -0 "$pid" 2>/dev/null || die "$name exited at once; its log: $RT_RUN/$name.log ($(tail -n 1 "$RT_RUN/$name.log"))"
}

# Stop our process NAME (its whole process group), if it runs.
proc_stop() {
	local pid i
	pid="$(proc_pid "$1")" || { rm -f "$RT_RUN/$1.pid" "$RT_RUN/$1.cmd"; return 0; }
	kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
	for i in $(seq 50); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.2
	done
	kill -0 "$pid" 2>/dev/null && kill -KILL -- "-$pid" 2>/dev/null
	rm -f "$RT_RUN/$1.pid" "$RT_RUN/$1.cmd"
}

# The application processes, in start order (MariaDB and Redis come first, separately).
RT_APP_PROCS="web socketio worker scheduler"
# RT_NODES=2: a second web server, socket.io server and RQ worker beside the first, sharing
# MariaDB and both Redis servers, as a deployment with two of each (the desks web2 serves connect
# to socketio2). Kept while they run: a later dev/bench-up or dev/test without RT_NODES restarts
# them too; `dev/bench-down web2 socketio2 worker2` goes back to one of each.
RT_NODES="${RT_NODES:-$([ -f "$RT_RUN/web2.pid" ] && echo 2 || echo 1)}"
RT_WEB2_PORT="${RT_WEB2_PORT:-$((RT_WEB_PORT + 1))}" RT_SOCKETIO2_PORT="${RT_SOCKETIO2_PORT:-$((RT_SOCKETIO_PORT + 1))}"
if [ "$RT_NODES" = 2 ]; then
	RT_APP_PROCS="$RT_APP_PROCS web2 socketio2 worker2"
fi

# Start one application process of the bench.
start_app_proc() {
	local py="$RT_BENCH/env/bin/python"
	case "$1" in
	web | web2)
		local port="$RT_WEB_PORT" desk_socketio="$RT_SOCKETIO_PORT"
		[ "$1" = web2 ] && port="$RT_WEB2_PORT" desk_socketio="$RT_SOCKETIO2_PORT"
		proc_start "$1" "$RT_BENCH/sites" "$port" env DEV_SERVER=1 RT_DEFAULT_SITE="$RT_SITE" \
			RT_DESK_SOCKETIO_PORT="$desk_socketio" \
			"$RT_BENCH/env/bin/gunicorn" --bind "127.0.0.1:$port" --workers 2 --threads 4 \
			--timeout 120 --pythonpath "$RT_CHECKOUT/dev" rt_dev_wsgi:application ;;
	socketio | socketio2)
		local port="$RT_SOCKETIO_PORT"
		[ "$1" = socketio2 ] && port="$RT_SOCKETIO2_PORT"
		proc_start "$1" "$RT_BENCH" "$port" env RT_SOCKETIO_LISTEN_PORT="$port" \
			node --require "$RT_CHECKOUT/dev/loopback.js" apps/frappe/socketio.js ;;
	worker | worker2)
		proc_start "$1" "$RT_BENCH/sites" 0 "$py" -m frappe.utils.bench_helper frappe worker \
			--queue short,default,long ;;
	scheduler)
		proc_start scheduler "$RT_BENCH/sites" 0 "$py" -m frappe.utils.bench_helper frappe schedule ;;
	*) die "unknown process '$1' (one of: $RT_APP_PROCS)" ;;
	esac
}

# Start the Redis server of this bench for cache or queue (its config written by dev/bench-up).
start_redis() {
	local port
	port="$([ "$1" = cache ] && echo "$RT_REDIS_CACHE_PORT" || echo "$RT_REDIS_QUEUE_PORT")"
	proc_start "redis-$1" "$RT_BENCH/config" "$port" redis-server "$RT_BENCH/config/redis_$1.conf" --daemonize no
}

# Start MariaDB on $RT_DB_PORT unless something listens there: on 3306 the OS package's server
# (as user mysql), on another port this bench's own server, run as the current user, made on
# first use with root's password $DB_ROOT_PASSWORD.
start_db() {
	port_open "$RT_DB_PORT" && return 0
	if [ "$RT_DB_PORT" = 3306 ]; then
		as_root mkdir -p /run/mysqld
		as_root chown mysql:mysql /run/mysqld
		[ -d /var/lib/mysql/mysql ] || as_root mariadb-install-db --user=mysql >/dev/null
		local sudo=()
		[ "$(id -u)" = 0 ] || sudo=(sudo -n)
		proc_start mariadb / 3306 "${sudo[@]}" mariadbd --user=mysql
		return
	fi
	local cnf="$RT_DB_DIR/my.cnf"
	mkdir -p "$RT_DB_DIR/data"
	cat >"$cnf" <<CNF
# written by RT Studio's dev/bench-up: this bench's own MariaDB, on loopback only
[mysqld]
datadir = $RT_DB_DIR/data
port = $RT_DB_PORT
socket = $RT_DB_DIR/mysqld.sock
pid-file = $RT_DB_DIR/mysqld.pid
bind-address = 127.0.0.1
character-set-server = utf8mb4
collation-server = utf8mb4_unicode_ci
CNF
	if [ ! -d "$RT_DB_DIR/data/mysql" ]; then
		mariadb-install-db --defaults-file="$cnf" --user="$(id -un)" --auth-root-authentication-method=normal \
			>"$RT_RUN/mariadb-install.log" 2>&1 || die "mariadb-install-db failed; see $RT_RUN/mariadb-install.log"
	fi
	proc_start mariadb / "$RT_DB_PORT" mariadbd --defaults-file="$cnf" --user="$(id -un)"
	# root over TCP with the password, whether it connects as root@localhost or root@127.0.0.1; no
	# anonymous users (mariadb-install-db makes them, and they hide a site's user from localhost)
	mariadb -h 127.0.0.1 -P "$RT_DB_PORT" -u root -p"$DB_ROOT_PASSWORD" -e 'select 1' >/dev/null 2>&1 ||
		mariadb --socket="$RT_DB_DIR/mysqld.sock" -u root -e "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1';
			GRANT ALL ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
			ALTER USER 'root'@'127.0.0.1' IDENTIFIED BY '$DB_ROOT_PASSWORD';
			ALTER USER 'root'@'localhost' IDENTIFIED VIA mysql_native_password USING PASSWORD('$DB_ROOT_PASSWORD');
			DELETE FROM mysql.global_priv WHERE User = ''; FLUSH PRIVILEGES;" || die "could not set root's password on the MariaDB of $RT_DB_DIR"
}

load_state() { [ -f "$RT_STATE" ] && . "$RT_STATE"; return 0; }
