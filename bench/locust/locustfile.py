"""The study's workload for Locust (headless): mostly predictions, now and then a training run, at a fixed rate
per simulated user; the number of users follows BENCH_STAGES ([[seconds, users], ...]) — steady or bursty.

    BENCH_PREDICT_PATH=/function/predict BENCH_TRAIN_PATH=/function/train \\
    BENCH_STAGES='[[30, 10]]' locust -f bench/locust/locustfile.py --headless --host http://127.0.0.1:8080 --csv out
"""

import json
import os

from locust import FastHttpUser, LoadTestShape, constant_throughput, task

PREDICT_PATH = os.environ["BENCH_PREDICT_PATH"]
TRAIN_PATH = os.environ["BENCH_TRAIN_PATH"]
PER_USER_RPS = float(os.environ.get("BENCH_PER_USER_RPS", "2"))
STAGES = json.loads(os.environ["BENCH_STAGES"])
TRAIN_EVERY = int(os.environ.get("BENCH_TRAIN_EVERY", "100"))  # one training per this many predictions
ROW = {"instances": [[5.1, 3.5, 1.4, 0.2]]}


class Client(FastHttpUser):
    wait_time = constant_throughput(PER_USER_RPS)
    network_timeout = 120.0
    connection_timeout = 120.0

    @task(TRAIN_EVERY)
    def predict(self):
        self.client.post(PREDICT_PATH, json=ROW, name="predict")

    @task(1)
    def train(self):
        self.client.post(TRAIN_PATH, json={}, name="train")


class Stages(LoadTestShape):
    def tick(self):
        elapsed = 0.0
        now = self.get_run_time()
        for seconds, users in STAGES:
            elapsed += seconds
            if now < elapsed:
                return users, 100
        return None
