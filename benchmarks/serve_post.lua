-- wrk script: POST /recommend for one known Gowalla user, k 10 (a closed-loop probe used
-- with perf to see where the server's CPU goes; serve_load.py is the open-loop load test)
wrk.method = "POST"
wrk.body = '{"user_id": "0", "k": 10}'
wrk.headers["Content-Type"] = "application/json"
