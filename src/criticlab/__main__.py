from criticlab.cli import main

main()
