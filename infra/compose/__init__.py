"""What the compose stack's one-shot init services run (docker-compose.yaml): accounts,
credentials and grants of MongoDB, Kafka and Airflow. The other files of this folder are
mounted into containers that are not the platform's image (Kafka's start script, the TLS
proxy's configuration)."""
