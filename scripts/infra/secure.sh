# shellcheck shell=bash
# scripts/infra/secure.sh -- the secured mode of the test infrastructure, sourced
# by scripts/infra.sh (not run on its own). docs/security.md explains the design.
#
#  - hub_tls_init: a throw-away CA and server certificates for 127.0.0.1/localhost
#    (openssl, EC P-256), in $HUB_SCRATCH/tls. PostgreSQL always uses them (ssl=on);
#    the broker when HUB_KAFKA_SECURITY=sasl_ssl.
#  - HUB_KAFKA_SECURITY=sasl_ssl: the broker's client listener is SASL_SSL with
#    SCRAM-SHA-512 users created at format time (one per [principal] of
#    config/acls.conf, plus the super user admin); the inter-broker and controller
#    listeners are TLS with client certificates (the broker's own, principal
#    hub-broker). The StandardAuthorizer is on, allow.everyone.if.no.acl.found=false,
#    and config/acls.conf is applied once the broker is up.
#  - every principal gets client settings in $HUB_KAFKA_CLIENTS: <name>.conf (a
#    libconfig snippet to @include inside kafka = { ... }), <name>.properties
#    (librdkafka properties, e.g. for kcat -F), <name>.password (mode 600).

# Kafka version of the secured broker. Debian 12's librdkafka (2.0.2, the hub's C
# services, kcat, python3-confluent-kafka) sends a SCRAM client-final nonce that
# Kafka 4.x rejects (librdkafka fixed it in 2.6.1, confluentinc/librdkafka#4895);
# Kafka 3.9 still accepts it. With librdkafka >= 2.6.1, set HUB_KAFKA_SECURE_VERSION=4.1.1.
_HUB_KAFKA_SECURE_VERSION_DEFAULT=3.9.1

_hub_tls_dir() { printf '%s' "$HUB_SCRATCH/tls"; }

# _hub_tls_leaf <dir> <name> <common name>: key + certificate signed by the CA,
# valid for localhost and 127.0.0.1, usable as server and as client certificate.
_hub_tls_leaf() {
    local dir=$1 name=$2 cn=$3
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/$name.key" &&
        openssl req -new -key "$dir/$name.key" -subj "/O=LLR Transitions Hub test/CN=$cn" \
            -out "$dir/$name.csr" &&
        openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
            -CAcreateserial -days 7 -sha256 -out "$dir/$name.crt" -extfile <(
                printf '%s\n' 'basicConstraints=critical,CA:false' \
                    'keyUsage=critical,digitalSignature,keyEncipherment' \
                    'extendedKeyUsage=serverAuth,clientAuth' \
                    'subjectAltName=DNS:localhost,IP:127.0.0.1'
            ) &&
        rm -f "$dir/$name.csr"
}

# _hub_tls_ca <dir> <name> <common name>: a self-signed CA.
_hub_tls_ca() {
    local dir=$1 name=$2 cn=$3
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/$name.key" &&
        openssl req -x509 -new -key "$dir/$name.key" -sha256 -days 7 \
            -subj "/O=LLR Transitions Hub test/CN=$cn" \
            -addext basicConstraints=critical,CA:true \
            -addext keyUsage=critical,keyCertSign,cRLSign -out "$dir/$name.crt"
}

# hub_tls_init: the scratch directory's CA (ca.crt), certificates for the broker
# (kafka.crt, CN hub-broker, and kafka.p12 for Java) and PostgreSQL (postgres.crt),
# and a second CA that signed nothing (other-ca.crt, for tests that a wrong CA is
# refused). Made once per scratch directory; exports HUB_TLS_CA, HUB_TLS_OTHER_CA.
hub_tls_init() {
    local dir
    dir=$(_hub_tls_dir)
    if [[ ! -f "$dir/.complete" ]]; then
        rm -rf "$dir"
        (umask 077 && mkdir -p "$dir") || return 1
        # Certificates must be readable by the clients; keys stay 600.
        chmod 755 "$dir" || return 1
        {
            (umask 077 && _hub_tls_ca "$dir" ca "hub test CA" &&
                _hub_tls_ca "$dir" other-ca "another CA" &&
                _hub_tls_leaf "$dir" kafka hub-broker &&
                _hub_tls_leaf "$dir" postgres hub-postgres &&
                openssl rand -hex 24 >"$dir/kafka.p12.password" &&
                openssl pkcs12 -export -inkey "$dir/kafka.key" -in "$dir/kafka.crt" \
                    -certfile "$dir/ca.crt" -name hub-broker \
                    -passout "file:$dir/kafka.p12.password" -out "$dir/kafka.p12") &&
                chmod 644 "$dir"/*.crt
        } >"$dir/openssl.log" 2>&1 || {
            _hub_tail "$dir/openssl.log"
            _hub_err "certificate generation failed"
            return 1
        }
        rm -f "$dir"/*.srl "$dir/other-ca.key"
        : >"$dir/.complete"
    fi
    HUB_TLS_CA=$dir/ca.crt
    HUB_TLS_OTHER_CA=$dir/other-ca.crt
    export HUB_TLS_CA HUB_TLS_OTHER_CA
}

_hub_kafka_secure() { [[ "${HUB_KAFKA_SECURITY:-plaintext}" == sasl_ssl ]]; }

# The principals of the ACL file ($HUB_KAFKA_ACL_FILE, default config/acls.conf).
_hub_kafka_acl_file() { printf '%s' "${HUB_KAFKA_ACL_FILE:-$(dirname "$_HUB_INFRA_DIR")/../config/acls.conf}"; }
_hub_kafka_principals() {
    sed -n 's/^[[:space:]]*\[\([A-Za-z0-9][A-Za-z0-9._-]*\)\][[:space:]]*$/\1/p' "$(_hub_kafka_acl_file)"
}

# Listener, TLS, SASL and authorizer settings of the secured broker (appended to
# server.properties by _hub_kafka_write_config).
_hub_kafka_secure_config() {
    local tls
    tls=$(_hub_tls_dir)
    cat <<EOF
listeners=SASL_SSL://127.0.0.1:$HUB_KAFKA_PORT,INTERNAL://127.0.0.1:$HUB_KAFKA_INTERNAL_PORT,CONTROLLER://127.0.0.1:$HUB_KAFKA_CONTROLLER_PORT
advertised.listeners=SASL_SSL://127.0.0.1:$HUB_KAFKA_PORT,INTERNAL://127.0.0.1:$HUB_KAFKA_INTERNAL_PORT
listener.security.protocol.map=SASL_SSL:SASL_SSL,INTERNAL:SSL,CONTROLLER:SSL
controller.listener.names=CONTROLLER
inter.broker.listener.name=INTERNAL

# TLS everywhere. The broker's certificate (CN hub-broker) is its identity on the
# internal and controller listeners, which require a client certificate from the CA.
ssl.keystore.type=PKCS12
ssl.keystore.location=$tls/kafka.p12
ssl.keystore.password=$(<"$tls/kafka.p12.password")
ssl.truststore.type=PEM
ssl.truststore.location=$tls/ca.crt
ssl.endpoint.identification.algorithm=https
listener.name.internal.ssl.client.auth=required
listener.name.controller.ssl.client.auth=required
ssl.principal.mapping.rules=RULE:^.*CN=([^,]+)(,.*)?\$/\$1/,DEFAULT

# Clients authenticate with SCRAM-SHA-512 (users created at format time).
sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;

# Nothing is allowed unless an ACL allows it (config/acls.conf).
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:admin;User:hub-broker
EOF
}

# Writes the client settings of every principal into $HUB_KAFKA_CLIENTS (passwords
# made on first use, mode 600) and prints the --add-scram arguments for the format.
_hub_kafka_secure_clients() {
    local dir=$HUB_KAFKA_CLIENTS name pw
    (umask 077 && mkdir -p "$dir") || return 1
    chmod 755 "$dir" || return 1
    for name in admin $(_hub_kafka_principals); do
        [[ -s "$dir/$name.password" ]] || (umask 077 && openssl rand -hex 24 >"$dir/$name.password") || return 1
        pw=$(<"$dir/$name.password")
        cat >"$dir/$name.conf" <<EOF || return 1
# Kafka client settings of principal $name on the test broker, for
#     kafka = { bootstrap_servers = "$HUB_KAFKA_BOOTSTRAP"; @include "$dir/$name.conf" };
security_protocol = "SASL_SSL";
ssl_ca_location = "$HUB_TLS_CA";
ssl_endpoint_identification_algorithm = "https";
sasl_mechanisms = "SCRAM-SHA-512";
sasl_username = "$name";
sasl_password_file = "$dir/$name.password";
EOF
        (umask 077 && cat >"$dir/$name.properties" <<EOF) || return 1
bootstrap.servers=$HUB_KAFKA_BOOTSTRAP
security.protocol=SASL_SSL
ssl.ca.location=$HUB_TLS_CA
ssl.endpoint.identification.algorithm=https
sasl.mechanisms=SCRAM-SHA-512
sasl.username=$name
sasl.password=$pw
EOF
        printf -- '--add-scram\nSCRAM-SHA-512=[name=%s,password=%s]\n' "$name" "$pw"
    done
    # The Java admin client (scripts/hub-acls) takes a JAAS line instead.
    (umask 077 && cat >"$dir/admin-java.properties" <<EOF) || return 1
security.protocol=SASL_SSL
ssl.truststore.type=PEM
ssl.truststore.location=$HUB_TLS_CA
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$(<"$dir/admin.password")";
EOF
}

# Before the first start of a secured broker: certificates, client settings and
# SCRAM users. Prints nothing; leaves the format's extra arguments (a Java
# @argfile, mode 600, so passwords never show on a command line) in $1.
_hub_kafka_secure_prepare() {
    local argfile=$1
    hub_tls_init || return 1
    (umask 077 && _hub_kafka_secure_clients >"$argfile") || { rm -f "$argfile"; return 1; }
}

# Exports what clients need for the secured broker: the admin's settings for the
# tests (HUB_KAFKA_EXTRA_PROPS, read by tests/support.c and tests/cli/*.sh),
# KCAT_CONFIG (kcat -F) and HUB_KAFKA_CLIENTS. In plaintext mode, unsets them.
_hub_kafka_secure_env() {
    if _hub_kafka_secure; then
        HUB_KAFKA_CLIENTS=$HUB_SCRATCH/kafka-clients
        HUB_KAFKA_EXTRA_PROPS="security.protocol=SASL_SSL,ssl.ca.location=$HUB_TLS_CA,ssl.endpoint.identification.algorithm=https,sasl.mechanisms=SCRAM-SHA-512,sasl.username=admin,sasl.password.file=$HUB_KAFKA_CLIENTS/admin.password"
        KCAT_CONFIG=$HUB_KAFKA_CLIENTS/admin.properties
        export HUB_KAFKA_CLIENTS HUB_KAFKA_EXTRA_PROPS KCAT_CONFIG
    else
        unset HUB_KAFKA_CLIENTS HUB_KAFKA_EXTRA_PROPS KCAT_CONFIG HUB_KAFKA_INTERNAL_PORT
    fi
}

# After the secured broker answers: apply config/acls.conf (once per data dir).
_hub_kafka_secure_ready() {
    local kdir=$1 start
    [[ -f "$kdir/acls.applied" ]] && return 0
    start=$(_hub_now_us)
    if ! "$(dirname "$_HUB_INFRA_DIR")/hub-acls" --kafka-libs "$(hub_kafka_libs)" \
        --bootstrap-server "$HUB_KAFKA_BOOTSTRAP" \
        --command-config "$HUB_KAFKA_CLIENTS/admin-java.properties" \
        apply "$(_hub_kafka_acl_file)" >"$kdir/acls.log" 2>&1; then
        _hub_tail "$kdir/acls.log"
        _hub_err "applying $(_hub_kafka_acl_file) failed"
        return 1
    fi
    : >"$kdir/acls.applied"
    _hub_log "kafka: ACLs of $(_hub_kafka_acl_file) applied ($(_hub_since "$start"))"
}

# hub_kafka_use_security <plaintext|sasl_ssl>: stop the running broker and start
# one in the other mode (its own data directory and ports), with the hub's topics.
# scripts/test uses it for its secured pass.
hub_kafka_use_security() {
    local mode=${1:?usage: hub_kafka_use_security plaintext|sasl_ssl}
    [[ "$mode" == plaintext || "$mode" == sasl_ssl ]] || { _hub_err "security mode '$mode' must be plaintext or sasl_ssl"; return 1; }
    hub_kafka_stop || return 1
    HUB_KAFKA_SECURITY=$mode
    export HUB_KAFKA_SECURITY
    unset HUB_KAFKA_PORT HUB_KAFKA_CONTROLLER_PORT HUB_KAFKA_INTERNAL_PORT
    hub_kafka_start && hub_kafka_create_topics
}

# hub_kafka_scram_rotate <principal>: a new SCRAM password for principal, set on the
# running secured broker (scripts/hub-acls scram-set: the password travels in a file,
# never on a command line), then its client files in $HUB_KAFKA_CLIENTS are
# rewritten. The old password stops working at once; open connections stay up.
hub_kafka_scram_rotate() {
    local name=${1:?usage: hub_kafka_scram_rotate <principal>} dir=${HUB_KAFKA_CLIENTS:-}
    if ! _hub_kafka_secure || [[ -z "$dir" || ! -f "$dir/$name.password" ]]; then
        _hub_err "no secured broker, or no principal '$name' in it"
        return 1
    fi
    (umask 077 && openssl rand -hex 24 >"$dir/$name.password.new") || return 1
    if ! "$(dirname "$_HUB_INFRA_DIR")/hub-acls" --kafka-libs "$(hub_kafka_libs)" \
        --bootstrap-server "$HUB_KAFKA_BOOTSTRAP" --command-config "$dir/admin-java.properties" \
        scram-set "$name" "$dir/$name.password.new" >"$dir/scram-rotate.log" 2>&1; then
        _hub_tail "$dir/scram-rotate.log"
        rm -f "$dir/$name.password.new"
        _hub_err "rotating the password of $name failed"
        return 1
    fi
    mv -f "$dir/$name.password.new" "$dir/$name.password" &&
        _hub_kafka_secure_clients >/dev/null &&
        _hub_log "kafka: new SCRAM password for $name"
}
