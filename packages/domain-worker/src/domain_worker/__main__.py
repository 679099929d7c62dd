from domain_worker import main

main()
