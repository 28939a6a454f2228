"""The functions benchmark's parts (bench/bench_functions.py is its command line): the processes it starts,
the HTTP load it drives, the measurements, the run with its targets, and the scikit-learn baseline server.

Modules import only the standard library at the top: baseline.py runs in the train function's venv, where
neither the harness nor local_openfaas is installed."""
