"""The nightly, in the order it flows: plan.py (the DAG of jobs, stored with the run),
run.py (plan -> record -> execute -> summarise -> publish), executor.py (jobs on worker
threads within the budget; the only writer of job results), stages/ (what each job does:
return an outcome, never write the store), summary.py and display.py (what a person sees)."""
