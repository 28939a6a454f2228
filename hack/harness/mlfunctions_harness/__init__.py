"""The test harness: a real control plane (and node), PKI, kubeconfigs, process supervision, servers for tests."""
