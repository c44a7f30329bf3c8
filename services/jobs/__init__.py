"""The dispatcher: it moves jobs from PostgreSQL onto RabbitMQ and recovers lost ones."""
