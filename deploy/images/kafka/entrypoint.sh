#!/bin/bash
# KAFKA_NODE_ID=1 becomes node.id=1, as in the official image; the storage is formatted once.
set -euo pipefail
props=/var/lib/kafka/server.properties
: > "$props"
echo "log.dirs=/var/lib/kafka/data" >> "$props"
while IFS='=' read -r name value; do
  case "$name" in
    KAFKA_HEAP_OPTS|KAFKA_OPTS|KAFKA_CLUSTER_ID) ;;
    KAFKA_*) key="${name#KAFKA_}"; key="${key,,}"; echo "${key//_/.}=$value" >> "$props" ;;
  esac
done < <(env)
java=(java ${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m} -XX:+UseG1GC -Djava.awt.headless=true
      -Dlog4j2.configurationFile=/opt/kafka/config/log4j2.properties
      -Dkafka.logs.dir=/var/lib/kafka/logs -cp "/opt/kafka/libs/*")
if [ ! -f /var/lib/kafka/data/meta.properties ]; then
  cluster="${KAFKA_CLUSTER_ID:-$("${java[@]}" kafka.tools.StorageTool random-uuid)}"
  "${java[@]}" kafka.tools.StorageTool format -t "$cluster" -c "$props" --ignore-formatted >/dev/null
fi
exec "${java[@]}" kafka.Kafka "$props"
