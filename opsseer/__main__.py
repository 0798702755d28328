from opsseer.cli import main

main()
