#!/usr/bin/env bash
# Start the compose stack's Kafka broker (apache/kafka image, KRaft, one node) with SASL/SCRAM
# and ACLs. docker-compose.yaml mounts this folder read-only and makes this the entrypoint, so
# the image's own env-to-properties step does not run: the configuration is all here.
#
# Listeners:
#   CLIENTS    :9092 on the compose network, SASL_PLAINTEXT with SCRAM-SHA-512. Every
#              platform process logs in with its own user (infra/compose/access.py).
#   INTERNAL   localhost:9094, PLAINTEXT: the broker's own (inter-broker) listener and the
#              healthcheck; reachable from inside this container only.
#   CONTROLLER localhost:9093, PLAINTEXT: the KRaft controller; inside this container only.
# The principal of the two loopback listeners is ANONYMOUS: it is a super user so the broker
# and the controller can talk; nothing outside this container can reach them.
#
# The admin user (KAFKA_ADMIN_PASSWORD) is added when the storage is first formatted: SCRAM
# credentials live in the cluster metadata, and a first user can be made no other way. The
# service users are upserted by the kafka-init service over the admin's login on every up.
set -euo pipefail

: "${KAFKA_ADMIN_USER:?}" "${KAFKA_ADMIN_PASSWORD:?}"
if [[ ! "${KAFKA_ADMIN_PASSWORD}" =~ ^[A-Za-z0-9._-]{16,}$ ]]; then
  echo "KAFKA_ADMIN_PASSWORD must be at least 16 letters, digits or . _ -" >&2
  exit 2
fi

config=/tmp/fma-server.properties
cat > "${config}" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@localhost:9093
listeners=CLIENTS://:9092,INTERNAL://localhost:9094,CONTROLLER://localhost:9093
advertised.listeners=CLIENTS://kafka:9092,INTERNAL://localhost:9094
listener.security.protocol.map=CLIENTS:SASL_PLAINTEXT,INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=INTERNAL
controller.listener.names=CONTROLLER
sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.clients.sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.clients.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:ANONYMOUS;User:${KAFKA_ADMIN_USER}
allow.everyone.if.no.acl.found=false
auto.create.topics.enable=false
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
log.dirs=/var/lib/kafka/data
EOF

# Formats once (the cluster id only matters then); an already formatted log dir is kept.
/opt/kafka/bin/kafka-storage.sh format --ignore-formatted --config "${config}" \
  --cluster-id "$(/opt/kafka/bin/kafka-storage.sh random-uuid)" \
  --add-scram "SCRAM-SHA-512=[name=${KAFKA_ADMIN_USER},password=${KAFKA_ADMIN_PASSWORD}]"
unset KAFKA_ADMIN_PASSWORD
exec /opt/kafka/bin/kafka-server-start.sh "${config}"
