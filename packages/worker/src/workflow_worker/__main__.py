from workflow_worker import main

main()
