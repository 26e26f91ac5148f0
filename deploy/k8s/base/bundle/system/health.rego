# Health checks answered by GET /health/live and GET /health/ready.
package system.health

live := true

default ready := false

# Ready once every bundle has been activated (input.plugins_ready comes from verdict).
ready if input.plugins_ready
