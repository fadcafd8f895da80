from kurspakke.cli import main

main()
