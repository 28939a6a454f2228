"""The text `up` prints once the stack runs."""

from __future__ import annotations

from pathlib import Path

from mlfunctions_stack.sample import SAMPLE

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def instructions(cluster, gateway, store_url, token_file, trainer, predictors, seconds, sample,
                 console, extra_lines=(), warnings=()) -> str:
    """What `up` prints once everything runs: where each part is and commands to try (each of them works)."""
    train_url = trainer["status"]["url"]
    lines = [
        "",
        *(f"WARNING: {warning}" for warning in warnings),
        *([""] if warnings else []),
        f"mlfunctions is up ({seconds:.0f}s). Ctrl-C stops everything.",
        "",
        f"  export KUBECONFIG={cluster.kubeconfig}",
        f"  export PATH={Path(cluster.kubectl).parent}:$PATH      # kubectl {cluster.version}",
        (f"  gateway      {gateway.url}   (/system API: user {gateway.credentials.user}, password "
        f"{gateway.credentials.password})"),
        f"  model store  {store_url}   (admin token in {token_file})",
        f"  console      {console[0]}   (user {console[1]}, password {console[2].read_text().strip()})",
        *extra_lines,
        "",
        "Try:",
        "  kubectl get mlfunctions -A             # Task, Model, Ready, Replicas, URL",
        "  kubectl get functions.openfaas.com -A",
    ]
    for predictor in predictors:  # the deployed ones: a warning above says why another is not
        lines.append(f"  curl -s {predictor['status']['url']} -H 'Content-Type: application/json' -d '{SAMPLE}'")
    lines += [
        f"     -> {sample}",
        (f"  curl -s -X POST {train_url} -d '{{}}' -H \"Authorization: Bearer $(kubectl -n "
        f"{trainer['metadata']['namespace']} get secret {trainer['metadata']['name']}-invoke "
        "-o jsonpath='{.data.token}' | base64 -d)\"   # train a new version of iris"),
        f"  curl -s -u {gateway.credentials.user}:{gateway.credentials.password} {gateway.url}/system/functions",
        (f"  faas-cli list -g {gateway.url}        # after: faas-cli login -g {gateway.url} -u "
        f"{gateway.credentials.user} -p {gateway.credentials.password}"),
        f"  kubectl apply -f {EXAMPLES}/digits.yaml   # another model; then POST to its train function",
        "",
        ("To start from scratch: Ctrl-C (or `make down` elsewhere), then `make up FRESH=1` (every model, password and "
        "log in .stack goes)."),
        "",
        "iris-predict-v1 scales to zero after 15 minutes without requests; the next request starts it again.",
        (f"Logs in {gateway.state_dir.parent}/: operator.log, model-store/iris-server.log, faas/gateway.log, "
        "faas/logs/<namespace>/<function>-<n>.log"),
    ]
    return "\n".join(lines)
