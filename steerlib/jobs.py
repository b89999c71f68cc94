"""One command for every chapter's jobs: ``python -m steerlib.jobs <chapter> --help`` (:func:`steerlib.core.jobs.main`)."""
from steerlib.core.jobs import main

if __name__ == "__main__":
    main()
